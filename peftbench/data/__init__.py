"""Data stage: each task's source -> deterministic train/validation/test JSONL with rendered prompts."""
