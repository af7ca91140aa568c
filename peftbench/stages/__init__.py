"""The DAG's stages: what each Snakemake job runs (workflow/scripts/*.py only unpack Snakemake's arguments).

- `pipeline`: the jobs, one function each (build data, fine-tune, evaluate), on one loaded model per job.
- `train`, `checkpoint`: the one training loop every method shares, and its resumable checkpoints.
- `reload_check`: the evaluated model is the trained model (the stored task state reloaded and compared).
- `evaluate`: lm-eval on the task's YAML; `latency`: generation latency, the same probe for every method.
- `forgetting`: the loss on held-out general text against the base model's.
- `tuning`: the same learning-rate search for every trained method, chosen on validation loss only."""
