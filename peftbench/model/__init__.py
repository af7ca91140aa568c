"""The model: the base model every run starts from, and what runs a fine-tuned one.

- `base_model`: one plain Hugging Face folder (config, tokenizer, safetensors) per profile, and its loader.
- `assemble`: the base model with a method attached or loaded, in the run's dtype, device and precision.
- `finished_run`: a finished run folder as a standard artifact (its peft adapter folder) and `load_run`, its loader.
- `fused_qkv`: GPT-2's fused c_attn split into q, k, v so a method can adapt W_q and W_v only (LoRA §4.2).
- `peft_compat`: two fixes to peft's generation under this transformers, each with the upstream reason.
- `lm_eval_model`, `lm_eval_cli`: lm-eval's model "peftbench" (any finished run through lm-eval's HF class)
  and lm-eval's own command line with it registered.
- `generate`: a quick look at a run: its greedy completion of a prompt."""
