"""Statistics of the report: every score with a 95% interval, paired comparisons between methods, and
the papers' claims with a verdict computed from a run's data.

- `scores`: a run's per-example scores (samples.jsonl) as a statistic that can be recomputed on any
  resample of the test examples: a mean (F1, EM, ROUGE, accuracy) or a corpus metric (BLEU, chrF through
  sacrebleu's sufficient statistics; any other lm-eval aggregation recomputed on the resampled items).
- `bootstrap`: one seeded resampling of a task's test examples shared by every method (so differences
  are paired), combined with the seed-to-seed variance (variance components), the seed spread and
  stability, leave-one-seed-out, and the smallest detectable difference.
- `claims`: the claims of config/claims.yaml, each tested at its stated margin -> reproduced /
  contradicted / inconclusive at this budget (or: not run), under FDR control over the score tests.

Which variance each interval covers: test examples (the bootstrap, of the seed-mean score) and training
seeds (s²/S per seed-dependent method, Welch-Satterthwaite df); a trained method with one seed has unknown
seed variance and its intervals are provisional. The interval over seeds (a t interval of the per-seed
scores) covers training randomness alone on the fixed test set."""
