"""results/ -> results/summary.csv: one row per (model, task, method, seed), from the JSON each job
wrote. Only complete, consistent runs become rows: train.json, lm_eval.json, latency.json, samples.jsonl
and task_state.safetensors present and readable, and all of the same training (the state's sha256 and
the config hash agree). Any other run is listed with the reason, never summarised and never sinks the rest."""

from pathlib import Path

import pandas as pd

from peftbench import io
from peftbench.report import fairness

COLUMNS = [
    "model",
    "task",
    "method",
    "seed",
    "main_metric",
    "main_score",
    "trainable_params",
    "trainable_percent",
    "base_params",
    "storage_bytes",
    "latency_ms_per_token",
    "train_wall_s",
    "tokens_per_s",
    "train_gflop_per_s",
    "step_time_s",
    "peak_memory_bytes",
    "final_train_loss",
    "val_loss_before",
    "val_loss_after",
    "eval_wall_s",
    "git_commit",
    "git_dirty",
    "config_hash",
]


def row(run_dir):
    run_dir = Path(run_dir)
    tr = _json(run_dir / "train.json")
    ev = _json(run_dir / "lm_eval.json")["peftbench"]
    lat = _json(run_dir / "latency.json")
    prov = tr["provenance"]
    out = {
        "model": tr["model"],
        "task": tr["task"],
        "method": tr["method"],
        "seed": tr["seed"],
        "main_metric": ev["main_metric"],
        "main_score": ev["scores"][ev["main_metric"]],
        "trainable_params": tr["trainable_params"],
        "trainable_percent": tr["trainable_percent"],
        "base_params": tr["base_params"],
        "storage_bytes": tr.get("shipped_bytes", tr["stored_bytes_file"]),
        "latency_ms_per_token": lat["ms_per_token_median"],
        "train_wall_s": tr["wall_time_s"],
        "tokens_per_s": tr["tokens_per_s"],
        "train_gflop_per_s": tr.get("gflop_per_s"),  # runs written before it was measured: empty
        "step_time_s": tr["step_time_s"],
        "peak_memory_bytes": tr["peak_memory_bytes"],
        "final_train_loss": tr["loss_curve"][-1] if tr["loss_curve"] else None,
        "val_loss_before": tr["val_loss_before"],
        "val_loss_after": tr["val_loss_after"],
        "eval_wall_s": ev["wall_time_s"],
        "git_commit": prov["git"]["commit"],
        "git_dirty": prov["git"]["dirty"],
        "config_hash": prov["config_hash"],
    }
    if tr.get("trained_on"):  # profile key train_union: this task's score comes from the union's one model
        out["trained_on"] = tr["trained_on"]["union"]
    out.update({f"score_{k}": v for k, v in ev["scores"].items()})
    out.update(fairness.summary_columns(run_dir))  # forgetting, training FLOPs, the lr search
    return out


RUN_FILES = ("train.json", "lm_eval.json", "latency.json", "task_state.safetensors", "samples.jsonl")


def check(run_dir):
    """Raise ValueError naming the file when a run's files disagree: the stored state is not the one its
    train.json recorded, or the evaluation (lm_eval.json, latency.json) was made from another training."""
    from peftbench.identity import sha256_file

    run_dir = Path(run_dir)
    tr = _json(run_dir / "train.json")
    sha = tr.get("task_state_sha256")
    config_hash = (tr.get("provenance") or {}).get("config_hash")
    if not sha:
        raise ValueError(
            f"{run_dir / 'train.json'}: no task_state_sha256 recorded (an older peftbench wrote it): rerun"
        )
    if sha256_file(run_dir / "task_state.safetensors") != sha:
        raise ValueError(
            f"{run_dir / 'task_state.safetensors'}: sha256 differs from its train.json's: truncated or replaced"
        )
    evaluated = {
        "lm_eval.json": _json(run_dir / "lm_eval.json").get("peftbench") or {},
        "latency.json": _json(run_dir / "latency.json"),
    }
    io.read_jsonl(run_dir / "samples.jsonl")  # the statistics read it: a truncated one is named here
    for name, rec in evaluated.items():
        if rec.get("task_state_sha256") != sha or rec.get("config_hash") != config_hash:
            raise ValueError(
                f"{run_dir / name}: evaluated another training than its train.json's "
                f"(task state sha256 / config hash differ): stale, re-evaluate"
            )


def read_runs(run_dirs):
    """(rows, problems): a summary row per good run; (run_dir, reason) per run that is incomplete (the
    reason its job log gives), unreadable (a truncated JSON) or inconsistent. One bad run never stops the others."""
    rows, problems = [], []
    for d in dict.fromkeys(map(Path, run_dirs)):  # distinct runs: one listed twice is one row
        if not all((d / f).is_file() for f in RUN_FILES):
            problems.append((d, why_missing(d)))
            continue
        try:
            check(d)
            rows.append(row(d))
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            reason = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
            problems.append((d, f"corrupt: {reason}"))
    return rows, problems


_json = io.read_json  # a truncated or garbled file: a ValueError naming it, which read_runs reports as corrupt


def summarize(run_dirs, out_csv):
    rows, problems = read_runs(run_dirs)
    for d, reason in problems:
        print(f"not summarised: {d}: {reason}")
    df = pd.DataFrame(rows, columns=COLUMNS) if not rows else pd.DataFrame(rows)
    score_cols = sorted(c for c in df.columns if c.startswith("score_"))
    extra = [c for c in df.columns if c not in COLUMNS and c not in score_cols]
    df = df[COLUMNS + score_cols + extra].sort_values(["model", "task", "method", "seed"])
    with io.atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return df


def data_warnings(checks_files):
    """The data stage's loud warnings (test records that also occur in training), from each task's
    checks.json (absent: data built before the checks existed); an unreadable one says so, it never fails the report."""
    out = []
    for path in map(Path, checks_files):
        if not path.exists():
            continue
        try:
            out += list(_json(path).get("warnings") or [])
        except (OSError, ValueError, AttributeError) as e:
            out.append(f"{path}: the data checks could not be read ({e})")
    return out


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
    crash = next((line for line in lines if line.startswith("Fatal Python error:")), None)
    if crash:  # faulthandler's report (pipeline.logged): the process died in native code
        return f"{stage} crashed: {crash[len('Fatal Python error:') :].strip()[:200]} (see {log})"
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
                lines += [
                    f"{csv.name} / {r.get('variant') or r.get('method')}: {r['error']}"
                    for r in df[df.error.notna() & (df.error != "")].to_dict("records")
                ]
    present = {Path(p).stem for p in dict(costs).values() if Path(p).is_file()}
    for name in expected:
        if name not in present:
            log = Path(logs or ".") / f"{name}.log"
            text = (
                [l.strip() for l in log.read_text(errors="replace").splitlines() if l.strip()] if log.is_file() else []
            )
            why = f"failed: {text[-1][:300]} (see {log})" if text else "not run (see the Snakemake output)"
            lines.append(f"{name}.csv: {why}")
    return lines
