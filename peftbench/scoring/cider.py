"""CIDEr-D as pycocoevalcap's Cider computes it (the E2E challenge's CIDEr), for many resamples of a corpus
at once. Written by hand because the library recomputes everything per corpus in Python loops (about a
second per 630-sentence corpus), and the bootstrap needs thousands of resampled corpora.

pycocoevalcap (cider/cider_scorer.py, the MS-COCO caption code that tuetschek/e2e-metrics vendors unchanged):
n-grams n = 1..4 of whitespace tokens; document frequency df(g) = how many corpus items (images / MRs) have
g in any of their references; idf(g) = log(N) - log(max(1, df(g))), N the corpus' items; each sentence's
vector tf x idf per n; an item's score is 10 x the mean over n of the sum over its references of
sum_g min(v_hyp, v_ref) v_ref / (|v_hyp| |v_ref|) x exp(-(l_hyp - l_ref)² / (2 sigma²)), sigma 6, divided by
its number of references, where l is the sentence's *bigram* count (as the library counts it); the corpus
score is the mean over items.

A resample (counts[b, i]: how often item i is drawn) changes only df and N: an item drawn twice counts twice
in df, as the library counts a corpus that lists it twice. The per-sentence n-gram counts are kept, so each
resample costs a few sparse sums. Since idf >= 0, min(tf_h idf, tf_r idf) tf_r idf = min(tf_h, tf_r) tf_r idf²."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse

N = 4
SIGMA = 6.0


def _counts(sentence: str) -> Counter:
    words = sentence.split()
    return Counter(tuple(words[i : i + k]) for k in range(1, N + 1) for i in range(len(words) - k + 1))


def _bigrams(counts: Counter) -> int:
    return sum(c for g, c in counts.items() if len(g) == 2)  # the library's sentence "length"


class _References:
    """The reference side, the same for every system scored on a test set (built once, cached): the n-gram
    vocabulary of the references, which items have which n-gram (document frequency), every reference's
    n-gram counts and bigram length."""

    def __init__(self, references: tuple[tuple[str, ...], ...]):
        self.n = len(references)
        self.vocab: dict = {}
        present_i, present_g, r_seg, r_g, r_tf = [], [], [], [], []
        self.counts, ref_item = [], []  # per reference: its Counter; the item it belongs to
        for i, refs in enumerate(references):
            seen = set()
            for ref in refs:
                j = len(ref_item)
                ref_item.append(i)
                rc = _counts(ref)
                self.counts.append(rc)
                for g, c in rc.items():
                    seen.add(g)
                    r_seg.append(j * N + len(g) - 1)
                    r_g.append(self.vocab.setdefault(g, len(self.vocab)))
                    r_tf.append(c)
            for g in seen:
                present_i.append(i)
                present_g.append(self.vocab[g])
        self.n_refs, v = len(ref_item), len(self.vocab)
        self.ref_item = np.asarray(ref_item)
        self.lengths = np.array([_bigrams(c) for c in self.counts])
        self.present = sparse.csr_matrix((np.ones(len(present_i)), (present_i, present_g)), shape=(self.n, v))
        # entries of one (segment, n-gram) are distinct (Counter keys), so squares sum per segment
        self.r_sq = summing(r_seg, r_g, np.square(r_tf), v, self.n_refs * N)  # |v_ref|² = sum tf² idf²
        self.refs_per_item = np.bincount(self.ref_item, minlength=self.n).astype(float)
        self.to_item = sparse.csr_matrix(
            (np.ones(self.n_refs), (np.arange(self.n_refs), self.ref_item)), shape=(self.n_refs, self.n)
        )


def summing(seg, g, w, v, n_seg):
    """V x n_seg: a row vector over the n-grams times it sums w x that row's entry per segment."""
    return sparse.csr_matrix((np.asarray(w, float), (g, seg)), shape=(v, n_seg))


@functools.lru_cache(maxsize=2)
def _references(references: tuple[tuple[str, ...], ...]) -> _References:
    return _References(references)


class CiderStatistics:
    """hypotheses[i]: item i's (PTB-tokenized) output; references[i]: its tokenized references."""

    def __init__(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]):
        self.refs = refs = _references(tuple(tuple(r) for r in references))
        self.n = refs.n
        h_seg, h_g, h_tf = [], [], []  # hypothesis n-grams found in some reference, segment = item x order
        self._h_out = np.zeros((self.n, N))  # sum tf² of the others (df 0: idf = log N)
        m_seg, m_g, m_w = [], [], []  # matches, segment = reference x order, weight min(tf_h, tf_r) tf_r
        h_len = np.zeros(self.n)
        hyp_counts = [_counts(h) for h in hypotheses]
        for i, hc in enumerate(hyp_counts):
            h_len[i] = _bigrams(hc)
            for g, c in hc.items():
                if g in refs.vocab:
                    h_seg.append(i * N + len(g) - 1)
                    h_g.append(refs.vocab[g])
                    h_tf.append(c)
                else:
                    self._h_out[i, len(g) - 1] += c * c
        v = len(refs.vocab)
        for j, rc in enumerate(refs.counts):
            hc = hyp_counts[refs.ref_item[j]]
            for g, c in hc.items():
                if g in rc:
                    m_seg.append(j * N + len(g) - 1)
                    m_g.append(refs.vocab[g])
                    m_w.append(min(c, rc[g]) * rc[g])
        self._h_sq = summing(h_seg, h_g, np.square(h_tf), v, self.n * N)  # |v_hyp|² = sum tf² idf²
        self._match = summing(m_seg, m_g, m_w, v, refs.n_refs * N)
        self.penalty = np.exp(-((h_len[refs.ref_item] - refs.lengths) ** 2) / (2 * SIGMA**2))

    def item_scores(self, counts: np.ndarray) -> np.ndarray:
        """B x n: every item's CIDEr-D in each resample's corpus (document frequencies of that resample)."""
        counts = np.atleast_2d(np.asarray(counts, float))
        refs, b = self.refs, len(counts)
        log_n = np.log(counts.sum(1))
        df = np.asarray(counts @ refs.present)  # B x V
        idf2 = (log_n[:, None] - np.log(np.maximum(df, 1.0))) ** 2
        h_sq = np.asarray(idf2 @ self._h_sq).reshape(b, self.n, N) + log_n[:, None, None] ** 2 * self._h_out
        h_norm = np.sqrt(h_sq)
        r_norm = np.sqrt(np.asarray(idf2 @ refs.r_sq)).reshape(b, refs.n_refs, N)
        num = np.asarray(idf2 @ self._match).reshape(b, refs.n_refs, N)
        denom = h_norm[:, refs.ref_item, :] * r_norm
        val = np.divide(num, denom, out=num.copy(), where=denom != 0) * self.penalty[None, :, None]
        per_ref = val.mean(2)  # B x refs: the mean over n (the library averages after summing references)
        return 10.0 * np.asarray(per_ref @ refs.to_item) / refs.refs_per_item

    def score(self, counts: np.ndarray, chunk: int = 32) -> np.ndarray:
        """counts: B x n -> the B corpus CIDEr-D scores (the mean over the resample's items)."""
        counts = np.atleast_2d(np.asarray(counts, float))
        out = np.empty(len(counts))
        for start in range(0, len(counts), chunk):
            c = counts[start : start + chunk]
            out[start : start + chunk] = (c * self.item_scores(c)).sum(1) / c.sum(1)
        return out
