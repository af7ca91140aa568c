"""NIST as the E2E NLG Challenge scores it: `measure_scores.py -p` (the flag LoRA's examples/NLG README runs),
i.e. `NISTScore` of metrics/pymteval.py in tuetschek/e2e-metrics (commit 1b9c4d8; Ondřej Dušek, MIT-style
licence), ported here. Written by hand because the ecosystem lacks it: e2e-metrics is not on PyPI, and
nltk's `corpus_nist` is another NIST (its information weights and length penalty differ; it scores 0.7 or
so lower on E2E outputs).

pymteval's NIST (Doddington 2002 with mteval-v13a's beta), multi-reference, n = 5, case-insensitive:

  info(w_1..w_n) = log2(count(w_1..w_{n-1}) / count(w_1..w_n)), counts over *every* reference of the
                   corpus (the 0-gram's count is the corpus' total reference length)
  NIST           = BP x sum_n [sum over sentences of the hypothesis' n-grams clipped to the most any one
                   reference has, each times its info] / [sum over sentences of (len(hyp) - n + 1)]
  BP             = exp(-beta log²(min(1, L_sys / L_ref))), beta = -log 0.5 / log² 1.5, L_sys the total
                   hypothesis length, L_ref the sum over sentences of the mean reference length

Tokens: mteval-v13a's tokenization (pymteval's `tokenize`, the same regular expressions as sacrebleu's 13a
tokenizer, used here), lower-cased after tokenizing as pymteval does.

`NistStatistics` keeps each sentence's sufficient statistics (its clipped n-gram hits, its references'
n-gram counts, its lengths) so that NIST of any resample of the sentences (counts[b, i]: how often sentence
i is drawn) is a sum of rows: exactly the corpus NIST of the resampled corpus, where a sentence drawn twice
adds its references' n-gram counts twice, as pymteval's `append` would."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse

MAX_N = 5
BETA = -math.log(0.5) / math.log(1.5) ** 2  # mteval-v13a's and pymteval's


@functools.cache
def _tokenizer():
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()


def tokenize(text: str) -> list[str]:
    """mteval-v13a tokens, lower-cased (pymteval: tokenize, then lower-case each n-gram's tokens)."""
    return [t.lower() for t in _tokenizer()(text).split()]


def _ngrams(tokens, n):
    return Counter(zip(*[tokens[i:] for i in range(n)]))


def _length_penalty(sys_len, avg_ref_len):
    ratio = np.divide(sys_len, avg_ref_len, out=np.zeros_like(sys_len, dtype=float), where=avg_ref_len > 0)
    safe = np.where(ratio > 0, ratio, 1.0)
    bp = np.exp(-BETA * np.log(safe) ** 2)
    return np.where(ratio >= 1, 1.0, np.where(ratio <= 0, 0.0, bp))


def corpus_nist(hypotheses: Sequence[str], references: Sequence[Sequence[str]], max_n: int = MAX_N) -> float:
    """pymteval's NISTScore over the corpus, sentence by sentence as it accumulates (the direct form, to check
    NistStatistics against): hypotheses[i] against every reference in references[i]."""
    ref_counts = [Counter() for _ in range(max_n + 1)]  # [0]: the 0-gram, the total reference length
    hits = [[] for _ in range(max_n)]
    cand_lens = [0] * max_n
    avg_ref_len = 0.0
    for hyp, refs in zip(hypotheses, references):
        h, rs = tokenize(hyp), [tokenize(r) for r in refs]
        for n in range(1, max_n + 1):
            cand_lens[n - 1] += len(h) - n + 1  # pymteval's len(pred) - n, negative for short sentences
            merged = Counter()
            for r in rs:
                merged |= _ngrams(r, n)  # max over the references
                ref_counts[n].update(_ngrams(r, n))  # sum over the references
            hits[n - 1].append({g: min(c, merged[g]) for g, c in _ngrams(h, n).items() if merged[g]})
        ref_counts[0][()] += sum(map(len, rs))
        avg_ref_len += sum(map(len, rs)) / len(rs)

    def info(g):
        return math.log2(ref_counts[len(g) - 1][g[:-1]] / ref_counts[len(g)][g])

    total = 0.0
    for n in range(max_n):
        hit_info = sum(info(g) * c for sent in hits[n] for g, c in sent.items())
        total += hit_info / cand_lens[n] if cand_lens[n] else 0.0  # pymteval divides by zero (raises) there
    return float(_length_penalty(np.float64(cand_lens[0]), np.float64(avg_ref_len)) * total)


@functools.lru_cache(maxsize=2)
def _references(references: tuple[tuple[str, ...], ...], max_n: int) -> list[tuple[Counter, Counter, float]]:
    """Per item, its references' side (the same for every system on a test set; built once): their n-gram
    counts summed over the references (with the 0-gram: their total length), the most any one reference has
    of each n-gram (clipping), and the mean reference length."""
    out = []
    for refs in references:
        rs = [tokenize(r) for r in refs]
        totals, merged = Counter({(): sum(map(len, rs))}), Counter()
        for n in range(1, max_n + 1):
            for r in rs:
                grams = _ngrams(r, n)
                merged |= grams
                totals.update(grams)
        out.append((totals, merged, sum(map(len, rs)) / len(rs)))
    return out


class NistStatistics:
    """Per-sentence sufficient statistics of pymteval's NIST; `score(counts)` is the corpus NIST of each
    resample (a row of counts), computed from sparse sums instead of rescoring the texts."""

    def __init__(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]], max_n: int = MAX_N):
        self.max_n = max_n
        hyp_tok = [tokenize(h) for h in hypotheses]
        refs = _references(tuple(tuple(r) for r in references), max_n)
        n_sent = len(hyp_tok)
        hit_rows = [
            {g: min(c, merged[g]) for n in range(1, max_n + 1) for g, c in _ngrams(h, n).items() if merged[g]}
            for h, (_, merged, _) in zip(hyp_tok, refs)
        ]
        ref_totals = [totals for totals, _, _ in refs]
        # the n-grams whose counts matter: those a hypothesis hits, and their prefixes (info's numerator)
        needed = {()}
        for row in hit_rows:
            for g in row:
                needed.add(g)
                needed.add(g[:-1])
        vocab = {g: j for j, g in enumerate(sorted(needed, key=lambda g: (len(g), g)))}
        self.order = np.array([len(g) for g in vocab])  # 0 for the 0-gram
        self.prefix = np.array([vocab[g[:-1]] if g else 0 for g in vocab])

        def matrix(rows):
            i, j, v = [], [], []
            for k, row in enumerate(rows):
                for g, c in row.items():
                    if g in vocab:
                        i.append(k)
                        j.append(vocab[g])
                        v.append(c)
            return sparse.csr_matrix((np.asarray(v, float), (i, j)), shape=(n_sent, len(vocab)))

        self.refs, self.hits = matrix(ref_totals), matrix(hit_rows)
        lens = np.array([len(h) for h in hyp_tok], float)
        self.cand_lens = lens[:, None] - np.arange(max_n)[None, :]  # n_sent x max_n: len(hyp) - n + 1
        self.avg_ref_len = np.array([avg for _, _, avg in refs], float)

    def __len__(self):
        return self.cand_lens.shape[0]

    def score(self, counts: np.ndarray, chunk: int = 128) -> np.ndarray:
        """counts: B x n (how often each sentence is drawn) -> the B corpus NIST scores."""
        counts = np.atleast_2d(np.asarray(counts, float))
        out = np.empty(len(counts))
        for start in range(0, len(counts), chunk):
            c = counts[start : start + chunk]
            ref = np.asarray(c @ self.refs)  # B x V: the resample's reference n-gram counts
            hit = np.asarray(c @ self.hits)
            num = ref[:, self.prefix]
            info = np.log2(np.divide(num, ref, out=np.ones_like(ref), where=(ref > 0) & (num > 0)))
            weighted = hit * info
            lens = c @ self.cand_lens  # B x max_n
            total = np.zeros(len(c))
            for n in range(1, self.max_n + 1):
                hit_info = weighted[:, self.order == n].sum(1)
                total += np.divide(hit_info, lens[:, n - 1], out=np.zeros(len(c)), where=lens[:, n - 1] != 0)
            out[start : start + chunk] = _length_penalty(lens[:, 0], c @ self.avg_ref_len) * total
        return out

    def full(self) -> float:
        return float(self.score(np.ones((1, len(self))))[0])
