"""The E2E NLG Challenge's five metrics (Dušek et al. 2020), corpus level over multiple references, as
LoRA's Table 3 reports them (BLEU, NIST, METEOR, ROUGE-L, CIDEr). The challenge's own scripts
(tuetschek/e2e-metrics) are not on PyPI; its METEOR, ROUGE-L and CIDEr are the MS-COCO caption code,
which is (PyPI `pycocoevalcap`, the same jar and Python). BLEU and NIST as measure_scores.py computes them
with `-p` (pymteval, the flag LoRA's examples/NLG command passes):

  BLEU     sacrebleu corpus BLEU, 13a tokenization (mteval-v13a's, as pymteval's BLEU), lower-cased
  NIST     pymteval's NISTScore (peftbench/scoring/nist.py, a port: nltk's NIST is another), n = 5
  METEOR   pycocoevalcap's METEOR 1.5 jar (needs java: Debian default-jre-headless), on PTB tokens
  ROUGE-L  pycocoevalcap Rouge (LCS F-measure, beta 1.2, max over references), on PTB tokens
  CIDEr    pycocoevalcap Cider (CIDEr-D's n-gram TF-IDF over this corpus's references), on PTB tokens

PTB tokens are pycocoevalcap's PTBTokenizer (Stanford CoreNLP 3.4.1, java; lower-cases, drops
punctuation), as COCOEvalCap runs it. BLEU, METEOR and ROUGE-L are in percent; NIST and CIDEr raw,
as in the tables."""

import functools

from peftbench.scoring import nist as _nist

METRICS = ("bleu", "nist", "meteor", "rougeL", "cider")


def bleu(predictions, references):
    import sacrebleu

    n = max(map(len, references))
    streams = [[refs[i] if i < len(refs) else None for refs in references] for i in range(n)]
    return sacrebleu.corpus_bleu(predictions, streams, lowercase=True, tokenize="13a").score


def nist(predictions, references):
    return _nist.corpus_nist(predictions, references)


def coco(predictions, references):
    """METEOR, ROUGE-L, CIDEr through pycocoevalcap, on its PTB tokenization (two java runs)."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(references)})
    res = tok.tokenize({i: [{"caption": p}] for i, p in enumerate(predictions)})
    m = Meteor().compute_score(gts, res)[0]  # the java process ends with the object
    return {
        "meteor": 100.0 * m,
        "rougeL": 100.0 * float(Rouge().compute_score(gts, res)[0]),
        "cider": float(Cider().compute_score(gts, res)[0]),
    }


@functools.lru_cache(maxsize=4)
def _scores(items):
    predictions = [p for p, _ in items]
    references = [list(refs) for _, refs in items]
    return {
        "bleu": bleu(predictions, references),
        "nist": nist(predictions, references),
        **coco(predictions, references),
    }


def scores(predictions, references):
    """{bleu, nist, meteor, rougeL, cider} for hypotheses[i] against references[i] (a list each)."""
    return dict(_scores(tuple((p, tuple(r)) for p, r in zip(predictions, references))))


def aggregate(name):
    """An lm-eval aggregation over items (prediction, references): all five metrics are computed once per
    corpus (the java tools start once) and each aggregation picks its own."""

    def agg(items):
        return scores([p for p, _ in items], [list(r) for _, r in items])[name]

    agg.__name__ = f"e2e_{name}"
    return agg
