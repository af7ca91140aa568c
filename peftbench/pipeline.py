"""The jobs of the DAG, one function each; workflow/scripts/*.py only unpack Snakemake's arguments.

    base model ─┐
    task data ──┼─> finetune (task_state.safetensors, train.json) ─> evaluate (lm_eval.json, latency.json)
                └──────────────────────────────────────────────────> summary.csv ─> report
"""
import json
import os
import time
from pathlib import Path

import torch

from . import base_model, checkpoint, config, evaluate, io, latency, methods, provenance, train


def _threads(n):
    if n:
        torch.set_num_threads(int(n))


def device(cfg):
    """The profile's `device`; auto = cuda when a GPU is visible. Asking for cuda without one is an error."""
    wanted = cfg.get("device", "auto")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config: field 'device': cuda requested but no GPU is visible")
    return wanted


def build_data(task_name, sizes, out_dir):
    from .data import build
    return build.build(config.load_task(task_name), sizes, out_dir, source=sizes.get("source"))


def method_model(base_dir, method_spec, state=None, seed=0, device="cpu", base_dropout=None):
    """Base model + method: attached for training (state=None) or loaded from a task state.
    Seeded before attach: a method's random initialisation (LoRA's A) depends on the seed alone.
    `base_dropout` (training.base_dropout) sets the base model's own dropout before the method's modules exist."""
    model, tok = base_model.load(base_dir)
    if base_dropout is not None:
        train.set_dropout(model, base_dropout)
    methods.seed_everything(seed)
    base_params = sum(p.numel() for p in model.parameters())
    module = methods.load_module(method_spec["dir"])
    hp = method_spec["hyperparameters"]
    model = module.attach(model, hp) if state is None else module.load(model, state, hp)
    return model.to(device), tok, module, base_params


def finetune(cfg, base_dir, task_name, method_spec, seed, data_dir, out_state, out_train, threads=None):
    _threads(threads)
    settings = config.training_settings(cfg, method_spec)
    where = device(cfg)
    model, tok, module, base_total = method_model(base_dir, method_spec, seed=seed, device=where,
                                                  base_dropout=settings.get("base_dropout"))
    trainable, total = methods.count_parameters(model)
    records = {s: io.read_jsonl(Path(data_dir) / f"{s}.jsonl", required=("id", "prompt", "target"))
               for s in ("train", "validation")}
    spec = {k: v for k, v in method_spec.items() if k != "dir"}     # where the repo lives is not identity
    identity = [cfg["model"], task_name, spec, settings, cfg.get("precision")]
    resumable = {k: v for k, v in settings.items() if k != "checkpoint_every"}
    ckpt = checkpoint.Checkpoints(Path(out_state).parent / "checkpoints", settings["checkpoint_every"],
                                  provenance.config_hash(cfg["model"], task_name, method_spec["hyperparameters"],
                                                         resumable, cfg.get("precision"), seed))
    stats = train.train(model, tok, records["train"], records["validation"], settings, seed,
                        cfg.get("precision", "fp32"), checkpoints=ckpt,
                        target_end=config.load_task(task_name).get("target_end", "newline"),
                        add_bos=cfg["model"].get("add_bos", False))
    state = module.task_state(model)
    methods.save_state(state, out_state)
    io.write_json(out_train, {
        "model": cfg["model"]["name"], "task": task_name, "method": method_spec["name"], "seed": seed,
        "trainable_params": trainable, "total_params": total, "base_params": base_total,
        "trainable_percent": 100.0 * trainable / base_total,
        "stored_tensors": len(state), "stored_bytes_tensors": methods.state_bytes(state),
        "stored_dtypes": sorted({str(t.dtype).removeprefix("torch.") for t in state.values()}),
        "stored_bytes_file": os.path.getsize(out_state),
        **stats, "peak_memory_bytes": train.peak_memory_bytes(where),
        "training": settings, "hyperparameters": method_spec["hyperparameters"],
        "precision": cfg.get("precision", "fp32"), "device": where,
        "provenance": provenance.record(identity, seed),
    })
    ckpt.clear()                       # the outputs are complete: the checkpoints are spent


def evaluate_job(cfg, base_dir, task_name, method_spec, state_path, test_file, out_json, out_samples,
                 out_latency, threads=None):
    """lm-eval scores, then generation latency, on one loaded model (one model load, one process)."""
    _threads(threads)
    model, tok, *_ = method_model(base_dir, method_spec, methods.load_state(state_path), device=device(cfg))
    task = config.load_task(task_name)
    precision = cfg.get("precision", "fp32")
    start = time.perf_counter()
    results, samples = evaluate.run(model, tok, task["dir"], test_file,
                                    batch_size=cfg["evaluation"]["batch_size"], precision=precision,
                                    target_end=task.get("target_end", "newline"), add_bos=cfg["model"].get("add_bos", False))
    from lm_eval.utils import handle_non_serializable
    results["peftbench"] = {"wall_time_s": round(time.perf_counter() - start, 3),
                            "scores": evaluate.scores(results, task_name), "main_metric": task["main_metric"]}

    lat = cfg["latency"]
    prompts = [r["prompt"] for r in io.read_jsonl(test_file, required=("prompt",))[:lat["prompts"]]]
    timing = latency.per_token_ms(model, tok, prompts, lat["new_tokens"], lat["repeats"], precision)
    timing["threads"] = torch.get_num_threads()

    io.write_jsonl(out_samples, [evaluate.sample_record(s) for s in samples[f"peftbench_{task_name}"]])
    io.write_json(out_latency, timing)
    io.write_text(out_json, json.dumps(results, indent=2, default=handle_non_serializable) + "\n")


class logged:
    """Run a job with stdout/stderr in the rule's log file; the traceback lands there too."""

    def __init__(self, snakemake):
        import contextlib
        self.stack, self.path = contextlib.ExitStack(), (snakemake.log[0] if snakemake.log else None)

    def __enter__(self):
        import contextlib
        if self.path:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            f = self.stack.enter_context(open(self.path, "w"))
            self.stack.enter_context(contextlib.redirect_stdout(f))
            self.stack.enter_context(contextlib.redirect_stderr(f))
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None:
            import traceback
            traceback.print_exception(kind, value, tb)
        self.stack.close()
        return False
