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
as in the tables.

`Corpus` scores all five on any resample of the corpus at once (the report's bootstrap), each from
per-sentence sufficient statistics computed once, so a resample is a weighted sum instead of a rescoring:
BLEU's n-gram matches and lengths (sacrebleu's own), NIST's (nist.NistStatistics), METEOR's (the jar's
per-segment statistics: its corpus score is computed from their sum, but for a whole-match segment's one
chunk, so the jar scores the summed row of each resample), ROUGE-L's per-sentence scores (the library's corpus score is their mean) and CIDEr's n-gram
counts (cider.CiderStatistics: a resample changes its document frequencies). Each equals the metric of the
resampled corpus (a sentence drawn twice listed twice) to floating precision; tests/test_paper_metrics.py
checks it against the libraries.

Checked once by hand against the challenge's own script: on tuetschek/e2e-metrics' example-inputs (10
development MRs, baseline outputs; not copied here, the data is CC BY-SA), `measure_scores.py -p` prints
BLEU 0.7203, NIST 7.7889, METEOR 0.4801, ROUGE_L 0.7910, CIDEr 2.3039, and `scores` gives 72.03, 7.7889,
48.01, 79.10, 2.3039 (its jars taken from pycocoevalcap; nltk's NIST gave 6.2219 there)."""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Sequence

import numpy as np

from peftbench.scoring import cider as _cider
from peftbench.scoring import nist as _nist

METRICS = ("bleu", "nist", "meteor", "rougeL", "cider")


@functools.cache
def _bleu_metric():
    import sacrebleu

    return sacrebleu.BLEU(lowercase=True, tokenize="13a")


def _streams(references):
    n = max(map(len, references))
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(n)]


def bleu(predictions, references):
    import sacrebleu

    return sacrebleu.corpus_bleu(predictions, _streams(references), lowercase=True, tokenize="13a").score


def nist(predictions, references):
    return _nist.corpus_nist(predictions, references)


_PTB_REFERENCES: dict = {}  # the last test set's references, tokenized (every system is scored on them)


def ptb_tokenize(predictions, references):
    """(hypotheses, references) in pycocoevalcap's PTB tokens, one java run for both (the hypotheses alone
    when these references were tokenized last time)."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    key = tuple(tuple(r) for r in references)
    captions = {("h", i): [{"caption": p}] for i, p in enumerate(predictions)}
    if key not in _PTB_REFERENCES:
        captions.update({("r", i): [{"caption": r} for r in refs] for i, refs in enumerate(references)})
    tok = PTBTokenizer().tokenize(captions)
    n = len(predictions)
    if key not in _PTB_REFERENCES:
        _PTB_REFERENCES.clear()
        _PTB_REFERENCES[key] = [tok[("r", i)] for i in range(n)]
    return [tok[("h", i)][0] for i in range(n)], _PTB_REFERENCES[key]


class _Meteor:
    """One METEOR 1.5 process (pycocoevalcap's, started once: loading its paraphrase table takes seconds):
    per-segment statistics, and the corpus score of summed statistics (the jar's EVAL, which is how
    pycocoevalcap's compute_score gets its corpus score from the segments' statistics)."""

    BATCH = 256  # EVAL lines written before reading their answers (the pipes' buffers are finite)

    def __init__(self):
        from pycocoevalcap.meteor.meteor import Meteor

        self.meteor, self.lock = Meteor(), threading.Lock()

    def stats(self, hypotheses, references) -> np.ndarray:
        """n x 23: each segment's statistics as the corpus score sums them. METEOR 1.5's
        MeteorStats.addStats sums every field but a segment's chunks when it matches whole (every test and
        reference word matched, one chunk): that one chunk is not added, so it is zeroed here. Fields:
        test/reference length, function words, 4 stages x (test/reference content/function matches),
        chunks, test/reference word matches."""
        with self.lock:
            s = np.array([self.meteor._stat(h, refs).split() for h, refs in zip(hypotheses, references)], float)
        whole = (s[:, 4:20:2].sum(1) == s[:, 0]) & (s[:, 5:20:2].sum(1) == s[:, 1]) & (s[:, 20] == 1)
        s[whole, 20] = 0
        return s

    def score(self, summed: np.ndarray) -> np.ndarray:
        p, out = self.meteor.meteor_p, []
        with self.lock:
            for start in range(0, len(summed), self.BATCH):
                rows = summed[start : start + self.BATCH]
                p.stdin.write(
                    "".join("EVAL ||| " + " ".join(repr(float(x)) for x in row) + "\n" for row in rows).encode()
                )
                p.stdin.flush()
                for _ in rows:
                    p.stdout.readline()  # the one segment's score
                    out.append(float(p.stdout.readline().strip()))  # the corpus score
        return np.array(out)


@functools.cache
def _meteor() -> _Meteor:
    return _Meteor()


def _key(counts):
    return counts.shape, hashlib.sha1(np.ascontiguousarray(counts).tobytes()).hexdigest()


class Corpus:
    """One system's outputs on the test items: the five metrics of any resample of the items at once."""

    def __init__(self, predictions: Sequence[str], references: Sequence[Sequence[str]]):
        predictions, references = list(predictions), [list(r) for r in references]
        from pycocoevalcap.rouge.rouge import Rouge

        self.n = len(predictions)
        self._bleu = np.asarray(
            _bleu_metric()._extract_corpus_statistics(predictions, _streams(references)), dtype=np.int64
        )
        self._nist = _nist.NistStatistics(predictions, references)
        hyps, refs = ptb_tokenize(predictions, references)
        rouge = Rouge()
        self._rouge = np.array([rouge.calc_score([h], r) for h, r in zip(hyps, refs)])
        self._meteor = _meteor().stats(hyps, refs)
        self._cider = _cider.CiderStatistics(hyps, refs)
        self._cache = {}

    def resampled(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """counts: B x n, how often each item is drawn in each resample -> {metric: B scores}."""
        counts = np.atleast_2d(np.asarray(counts, np.int64))
        key = _key(counts)
        if key not in self._cache:
            bleu_metric = _bleu_metric()
            self._cache[key] = {
                "bleu": np.array(
                    [bleu_metric._compute_score_from_stats([int(x) for x in s]).score for s in counts @ self._bleu]
                ),
                "nist": self._nist.score(counts),
                "meteor": 100.0 * _meteor().score(counts @ self._meteor),
                "rougeL": 100.0 * (counts @ self._rouge) / counts.sum(1),
                "cider": self._cider.score(counts),
            }
        return self._cache[key]

    def full(self) -> dict[str, float]:
        return {m: float(v[0]) for m, v in self.resampled(np.ones((1, self.n), np.int64)).items()}

    def jackknife(self) -> dict[str, np.ndarray]:
        """Each metric with each item left out in turn (BCa's acceleration)."""
        return self.resampled(1 - np.eye(self.n, dtype=np.int64))


@functools.lru_cache(maxsize=16)
def _corpus(items) -> Corpus:
    return Corpus([p for p, _ in items], [list(refs) for _, refs in items])


def corpus(predictions, references) -> Corpus:
    return _corpus(tuple((p, tuple(r)) for p, r in zip(predictions, references)))


def scores(predictions, references):
    """{bleu, nist, meteor, rougeL, cider} for hypotheses[i] against references[i] (a list each)."""
    return corpus(predictions, references).full()


class Metric:
    """One metric of a run's Corpus, as peftbench.stats.scores statistics are used by the bootstrap: every
    metric of a run shares its Corpus, so a resample is scored once for all five."""

    nonnegative = True

    def __init__(self, corpus: Corpus, name: str):
        self.corpus, self.name = corpus, name

    def full(self) -> float:
        return self.corpus.full()[self.name]

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        return self.corpus.resampled(counts)[self.name]

    def jackknife(self) -> np.ndarray:
        return self.corpus.jackknife()[self.name]


def aggregate(name):
    """An lm-eval aggregation over items (prediction, references): all five metrics are computed once per
    corpus (the java tools start once) and each aggregation picks its own. Its `bootstrap_statistic` gives
    peftbench.stats.scores the resampling form (Metric)."""

    def agg(items):
        return scores([p for p, _ in items], [list(r) for _, r in items])[name]

    def bootstrap_statistic(items):
        return Metric(corpus([p for p, _ in items], [list(r) for _, r in items]), name)

    agg.__name__ = f"e2e_{name}"
    agg.bootstrap_statistic = bootstrap_statistic
    return agg
