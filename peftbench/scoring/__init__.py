"""Per-example and corpus metrics that the tasks' lm-eval YAMLs call (tasks/*/utils.py):
`metrics` (exact match, token F1, ROUGE, choice accuracy) and `e2e_metrics` (the E2E challenge's five)."""
