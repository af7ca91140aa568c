"""Per-example and corpus metrics that the tasks' lm-eval YAMLs call (tasks/*/utils.py, or a shared scorer):
`metrics` (exact match, token F1, ROUGE, choice accuracy), `e2e_metrics` (the E2E challenge's five) and
`commonsense` (the eight commonsense sets' one scorer, named by tasks/lm_eval_commonsense.yaml)."""
