"""Statistics of the report: every score with a 95% interval, paired comparisons between methods, and
the papers' claims with a verdict computed from a run's data.

- `scores`: a run's per-example scores (samples.jsonl) as a statistic that can be recomputed on any
  resample of the test examples: a mean (F1, EM, ROUGE, accuracy) or a corpus metric (BLEU, chrF through
  sacrebleu's sufficient statistics; any other lm-eval aggregation recomputed on the resampled items).
- `bootstrap`: one seeded resampling of a task's test examples shared by every method (so differences
  are paired), percentile intervals, the seed spread, and the smallest detectable difference.
- `claims`: the claims of config/claims.yaml, each tested at its stated margin -> reproduced /
  contradicted / inconclusive at this budget (or: not run).

Which variance each interval covers: the bootstrap intervals cover the sampling of test examples with the
trained models held fixed (with several seeds, of the seed-mean score); the interval over seeds (a t
interval of the per-seed scores) covers training randomness on the fixed test set."""
