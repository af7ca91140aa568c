"""Cost studies, each one rule of workflow/rules/costs.smk, measured side by side in one process:

- `latency_overhead`: inference latency of each method against the base model on the same inputs
  (LoRA Table 1's setting), with a bootstrap interval of each median overhead.
- `task_switch`: how long swapping one task's weights for another's takes, per method.
- `paper_scale`: the papers' architectures built on the meta device, and their trainable parameters and
  storage per method, set against the papers' own figures (peftbench.papers)."""
