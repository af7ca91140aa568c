"""results/ -> results/summary.csv: one row per (model, task, method, seed), from the JSON each job
wrote. Only complete runs (train.json + lm_eval.json + latency.json all present) become rows."""
from pathlib import Path

import pandas as pd

from . import io

COLUMNS = ["model", "task", "method", "seed", "main_metric", "main_score", "trainable_params",
           "trainable_percent", "base_params", "storage_bytes", "latency_ms_per_token", "train_wall_s",
           "tokens_per_s", "step_time_s", "peak_memory_bytes", "final_train_loss", "val_loss_before",
           "val_loss_after", "eval_wall_s", "git_commit", "git_dirty", "config_hash"]


def row(run_dir):
    run_dir = Path(run_dir)
    tr = io.read_json(run_dir / "train.json")
    ev = io.read_json(run_dir / "lm_eval.json")["peftbench"]
    lat = io.read_json(run_dir / "latency.json")
    prov = tr["provenance"]
    out = {"model": tr["model"], "task": tr["task"], "method": tr["method"], "seed": tr["seed"],
           "main_metric": ev["main_metric"], "main_score": ev["scores"][ev["main_metric"]],
           "trainable_params": tr["trainable_params"], "trainable_percent": tr["trainable_percent"],
           "base_params": tr["base_params"], "storage_bytes": tr["stored_bytes_file"],
           "latency_ms_per_token": lat["ms_per_token_median"], "train_wall_s": tr["wall_time_s"],
           "tokens_per_s": tr["tokens_per_s"], "step_time_s": tr["step_time_s"],
           "peak_memory_bytes": tr["peak_memory_bytes"],
           "final_train_loss": tr["loss_curve"][-1] if tr["loss_curve"] else None,
           "val_loss_before": tr["val_loss_before"], "val_loss_after": tr["val_loss_after"],
           "eval_wall_s": ev["wall_time_s"], "git_commit": prov["git"]["commit"],
           "git_dirty": prov["git"]["dirty"], "config_hash": prov["config_hash"]}
    out.update({f"score_{k}": v for k, v in ev["scores"].items()})
    return out


def summarize(run_dirs, out_csv):
    rows = [row(d) for d in run_dirs]
    df = pd.DataFrame(rows)
    score_cols = sorted(c for c in df.columns if c.startswith("score_"))
    df = df[COLUMNS + score_cols].sort_values(["model", "task", "method", "seed"])
    with io.atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return df


def why_missing(run_dir):
    """Why a run has no complete result, for the report: the exception its job log ends with (Snakemake
    keeps the log of a failed job and deletes its outputs), 'killed' when a log stops without one."""
    run_dir = Path(run_dir)
    stage = "evaluate" if (run_dir / "train.json").is_file() else "finetune"
    log = run_dir / f"{stage}.log"
    if not log.is_file():
        return f"{stage} not run (an upstream job failed, or the run was stopped)"
    lines = [l.strip() for l in log.read_text(errors="replace").splitlines() if l.strip()]
    if "Traceback (most recent call last):" in lines:
        return f"{stage} failed: {lines[-1][:300]} (see {log})"
    return f"{stage} did not finish: still running, or killed (see {log})"


def cost_failures(costs, expected=(), logs=None):
    """What the report lists for the cost measurements: each method a cost CSV records an `error` for
    (the measurement goes on without it), and each expected measurement with no CSV at all (its rule failed:
    the exception its log, `logs/<name>.log`, ends with)."""
    lines = []
    for csv in map(Path, dict(costs).values()):
        if csv.is_file():
            df = pd.read_csv(csv)
            if "error" in df:
                lines += [f"{csv.name} / {r.get('variant') or r.get('method')}: {r['error']}"
                          for r in df[df.error.notna() & (df.error != "")].to_dict("records")]
    present = {Path(p).stem for p in dict(costs).values() if Path(p).is_file()}
    for name in expected:
        if name not in present:
            log = Path(logs or ".") / f"{name}.log"
            text = [l.strip() for l in log.read_text(errors="replace").splitlines() if l.strip()] if log.is_file() else []
            why = f"failed: {text[-1][:300]} (see {log})" if text else "not run (see the Snakemake output)"
            lines.append(f"{name}.csv: {why}")
    return lines
