"""The equal tuning budget: every trained method gets the same small learning-rate search around its own
(paper) default, so no method looks bad only because it ran at someone else's rate.

    candidates: lr_c = factor_c x lr_method,  factor_c in tuning.lr_factors (e.g. 1/3, 1, 3), same steps
    winner:     argmin_c  validation loss of the stored model   (val_loss.json of rule validation_loss;
                                                                  never the test split)

The factor-1 candidate is the ordinary run (results/.../seed{s}/), so "as the paper says" stays in every
table; the others train under results/.../seed{s}/tuning/lr_x{factor}/, and only the winner is evaluated
again (results/.../seed{s}/tuned/). A candidate that diverges (NaN/inf loss) loses the search instead of
failing the workflow."""

import math
import shutil
from pathlib import Path

from peftbench import config, io

EVALUATED = ("lm_eval.json", "samples.jsonl", "latency.json", "forgetting.json", "lm_eval_task.yaml")


def label(factor):
    """A factor as it appears in a folder name: 0.333 -> '0.333', 3.0 -> '3'."""
    return f"{float(factor):g}"


def tuned_methods(cfg, specs, methods):
    """Methods the search applies to: those that train (steps > 0); none when `tuning.lr_factors` is empty."""
    if not cfg.get("tuning", {}).get("lr_factors"):
        return []
    return [m for m in methods if config.training_settings(cfg, specs[m])["steps"] > 0]


def candidate_config(cfg, spec, factor):
    """The profile with this method's learning rate scaled by `factor` (as the last word, like
    `method_training`), so the candidate's settings, config hash and checkpoints are its own."""
    lr = config.training_settings(cfg, spec)["learning_rate"] * float(factor)
    per_method = dict(cfg.get("method_training", {}))
    per_method[spec["name"]] = {**per_method.get(spec["name"], {}), "learning_rate": lr}
    return {**cfg, "method_training": per_method}


def finetune_candidate(
    cfg, base_dir, task, spec, seed, data_dir, factor, out_state, out_train, threads=None, tasks_dir=config.TASKS
):
    """One candidate's fine-tuning; a diverged one is recorded (train.json `diverged`) and loses."""
    from peftbench import methods
    from peftbench.stages import pipeline

    cand = candidate_config(cfg, spec, factor)
    try:
        pipeline.finetune(cand, base_dir, task, spec, seed, data_dir, out_state, out_train, threads, tasks_dir)
    except FloatingPointError as e:
        shutil.rmtree(Path(out_state).parent / "checkpoints", ignore_errors=True)  # a diverged run resumes nothing
        methods.save_state({}, out_state)
        io.write_json(
            out_train,
            {
                "task": task,
                "method": spec["name"],
                "seed": seed,
                "diverged": str(e),
                "training": config.training_settings(cand, spec),
            },
        )


def choose(candidates):
    """The candidate with the lowest validation loss; a tie goes to the factor nearest 1 (the paper's rate).
    candidates: [{"factor", "val_loss"}]; a val_loss of None (diverged) or NaN never wins."""
    ok = [c for c in candidates if c["val_loss"] is not None and math.isfinite(c["val_loss"])]
    if not ok:
        raise ValueError("tuning: every learning-rate candidate diverged")
    return min(ok, key=lambda c: (c["val_loss"], abs(math.log(float(c["factor"])))))


def validation_loss_job(
    cfg, base_dir, task, spec, run_dir, validation_file, out_json, threads=None, tasks_dir=config.TASKS
):
    """The search's criterion for one candidate (factor 1: the ordinary run): the mean target loss on the
    validation split of its stored task state, loaded through the method's own load as evaluate loads it, with
    the candidate's own settings (train.json). A diverged candidate's is null. Measured only when a profile
    searches: the ordinary fine-tuning job skips the pass (training.val_loss_after)."""
    from peftbench import identity, methods
    from peftbench.model import assemble
    from peftbench.stages import train

    run, tr = Path(run_dir), io.read_json(Path(run_dir) / "train.json")
    if tr.get("diverged"):
        io.write_json(out_json, {"val_loss": None, "diverged": tr["diverged"]})
        return
    assemble.set_threads(threads)
    state = run / "task_state.safetensors"
    sha = identity.check_state(state, tr.get("task_state_sha256"), "the learning-rate search")
    settings, precision = tr["training"], cfg.get("precision", "fp32")
    model, tok, *_ = assemble.method_model(
        base_dir,
        spec,
        methods.load_state(state),
        seed=tr["seed"],
        device=assemble.device(cfg),
        dtype=assemble.weights_dtype(cfg),
    )
    target_end = config.load_task(config.union_members(cfg, task)[0], tasks_dir).get("target_end", "newline")
    records = io.read_jsonl(validation_file, required=("id", "prompt", "target"))
    data = train.encode(
        records,
        tok,
        settings["max_seq_len"],
        str(validation_file),
        end=target_end,
        bos=cfg["model"].get("add_bos", False),
    )
    per_record = None
    if settings.get("unpadded", True):  # one sequence per forward: each record's loss, for the resampled choice
        pairs = train.record_losses(model, data, tok.pad_token_id, precision)
        loss = train.mean_loss(pairs)  # what train.evaluate_loss returns, unpadded
        per_record = {"loss_sums": [s for s, _ in pairs], "tokens": [n for _, n in pairs]}
    else:
        loss = train.evaluate_loss(model, data, settings["batch_size"], tok.pad_token_id, precision, False)
    out = {"val_loss": loss, "records": len(data), "task_state_sha256": sha}
    io.write_json(out_json, {**out, **({"per_record": per_record} if per_record else {})})


def select_job(factors, train_jsons, val_loss_jsons, out_json):
    """tuning.json from the candidates' train.json (their learning rates) and val_loss.json files alone."""
    cands, records, per_record = [], set(), []
    for factor, path, val in zip(factors, train_jsons, val_loss_jsons, strict=True):
        tr, loss = io.read_json(path), io.read_json(val)
        records.add(loss.get("records"))  # None: a diverged candidate scored nothing
        per_record.append(loss.get("per_record"))
        cands.append(
            {
                "factor": float(factor),
                "learning_rate": tr["training"]["learning_rate"],
                "val_loss": loss["val_loss"],
                "run": str(Path(path).parent),
            }
        )
    best = choose(cands)
    records.discard(None)
    shares = choice_shares(cands, per_record)
    io.write_json(
        out_json,
        {
            "criterion": "validation loss of the stored model (lowest wins)",
            "validation_records": max(records)
            if records
            else None,  # the task's validation split, as the profile sized it
            "candidates": cands,
            "chosen_factor": best["factor"],
            "chosen_learning_rate": best["learning_rate"],
            "chosen_run": best["run"],
            # how often the same search on resampled validation records (drawn with replacement, RESAMPLES times,
            # seeded) chooses each factor: the choice's stability against which records validate (not seeds)
            "choice_shares": shares,
            "chosen_share": shares.get(label(best["factor"])) if shares else None,
        },
    )


RESAMPLES = 2000


def choice_shares(cands, per_record, resamples=RESAMPLES, seed=0):
    """{factor label: share of bootstrap resamples of the validation records in which `choose` picks it}, each
    candidate's loss in a resample its token-weighted mean over the drawn records; {} where a candidate that did
    not diverge has no per-record losses (a padded validation pass) or the candidates scored different records."""
    import numpy as np

    live = [(c, r) for c, r in zip(cands, per_record) if c["val_loss"] is not None and math.isfinite(c["val_loss"])]
    if not live or any(r is None for _, r in live) or len({len(r["tokens"]) for _, r in live}) != 1:
        return {}
    sums = np.array([r["loss_sums"] for _, r in live], dtype=float)  # [candidates, records]
    tokens = np.array([r["tokens"] for _, r in live], dtype=float)
    draws = np.random.default_rng(seed).integers(0, sums.shape[1], size=(resamples, sums.shape[1]))
    losses = sums[:, draws].sum(-1) / np.maximum(tokens[:, draws].sum(-1), 1)  # [candidates, resamples]
    counts = {}
    for b in range(resamples):
        pick = choose([{**c, "val_loss": float(losses[i, b])} for i, (c, _) in enumerate(live)])
        counts[label(pick["factor"])] = counts.get(label(pick["factor"]), 0) + 1
    return {k: v / resamples for k, v in sorted(counts.items(), key=lambda kv: float(kv[0]))}


def evaluate_tuned(
    cfg,
    base_dir,
    task,
    spec,
    tuning_json,
    default_run,
    test_file,
    train_file,
    seed,
    forgetting,
    out_dir,
    threads=None,
    tasks_dir=config.TASKS,
):
    """Evaluate the winner into out_dir; when the paper default wins, its evaluation is the answer (copied)."""
    from peftbench.stages import pipeline

    chosen = io.read_json(tuning_json)
    out = Path(out_dir)
    if float(chosen["chosen_factor"]) == 1.0:
        for name in EVALUATED:
            with io.atomic_path(out / name) as tmp:
                shutil.copyfile(Path(default_run) / name, tmp)
        return
    run = Path(chosen["chosen_run"])
    pipeline.evaluate_job(
        cfg,
        base_dir,
        task,
        spec,
        run / "task_state.safetensors",
        test_file,
        out / "lm_eval.json",
        out / "samples.jsonl",
        out / "latency.json",
        threads,
        tasks_dir,
        train_file=train_file,
        seed=seed,
        forgetting=(*forgetting, out / "forgetting.json"),
    )
