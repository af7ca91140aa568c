"""The jobs of the DAG, one function each; workflow/scripts/*.py only unpack Snakemake's arguments.

base model ─┐
task data ──┼─> finetune (task_state.safetensors, train.json) ─> evaluate (lm_eval.json, latency.json)
            └──────────────────────────────────────────────────> summary.csv ─> report
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from peftbench import config, identity, io, methods, provenance
from peftbench.model import finished_run
from peftbench.model.assemble import as_stored, device, method_model, place, set_threads, weights_dtype
from peftbench.stages import checkpoint, evaluate, latency, reload_check, train

if TYPE_CHECKING:
    from snakemake.script import Snakemake
    from transformers import PreTrainedTokenizerBase


def build_data(
    task_name: str,
    sizes: dict,
    out_dir: Path | str,
    tasks_dir: Path = config.TASKS,
    base_dir: Path | str | None = None,
    max_seq_len: int | None = None,
) -> dict[str, int]:
    """The task's splits; with the base model's tokenizer, checked before any file is written (not minutes into
    fine-tuning): every train/validation record fits `max_seq_len` (the profile's training.max_seq_len), and
    every test prompt fits the context lm-eval gives it (`context_bounds`).
    `tasks_dir`: the workflow's tasks/ (a copy of the workflow may hold task folders this checkout lacks)."""
    from peftbench.data import build

    task = config.load_task(task_name, tasks_dir)
    check = None
    if base_dir and max_seq_len:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(base_dir, trust_remote_code=False)

        def check(rendered):
            where = {split: build.origin(task, split, sizes.get("source")) for split in rendered}
            longest = max_token_chars(tok)
            for split in ("train", "validation"):
                for r in rendered[split]:  # a 10 MB record is refused without tokenizing it
                    at_least = -(-(len(r["prompt"]) + len(r["target"])) // longest)
                    if at_least > max_seq_len:
                        raise ValueError(
                            f"{where[split]}: record {r['id']}: at least {at_least:,} tokens exceed "
                            f"training.max_seq_len={max_seq_len}"
                        )
                train.encode(rendered[split], tok, max_seq_len, where[split], task.get("target_end", "newline"))
            context_bounds(rendered["test"], tok, base_dir, task, where["test"])
            evaluate.check_scorer(task["dir"], rendered["test"][0], where["test"])

    return build.build(task, sizes, out_dir, source=sizes.get("source"), check=check)


def max_token_chars(tokenizer: PreTrainedTokenizerBase) -> int:
    """The most characters one token can stand for (byte-level BPE: bytes, never fewer than characters), so
    len(text) / this is a lower bound on its token count."""
    return max(1, max(len(t) for t in tokenizer.get_vocab()))


def context_bounds(records: list[dict], tok, base_dir: Path | str, task: dict, where: str) -> None:
    """Every test prompt within the context lm-eval gives it: lm-eval's max_length for this model (its config's
    n_positions/max_position_embeddings/n_ctx, else the tokenizer's model_max_length, else 2,048) less the
    task's max_gen_toks (generate_until) or the target's tokens (a likelihood task), one more for a BOS. lm-eval
    would cut a longer prompt from the left without a word (a 10 MB record: to 2,032 tokens), and the latency
    probe, which reads the same test prompts, would generate from all of it."""
    from lm_eval.models.utils import resolve_max_length
    from lm_eval.tasks._yaml_loader import load_yaml
    from transformers import AutoConfig

    limit = resolve_max_length(AutoConfig.from_pretrained(base_dir), tok)
    lm_yaml = load_yaml(Path(task["dir"]) / "lm_eval.yaml", resolve_func=False)
    generates = lm_yaml.get("output_type", "generate_until") == "generate_until"
    gen = int((lm_yaml.get("generation_kwargs") or {}).get("max_gen_toks", 256))  # HFLM.max_gen_toks: 256
    longest = max_token_chars(tok)
    for r in records:
        room = limit - 1 - (gen if generates else len(tok(r["target"], add_special_tokens=False).input_ids))
        what = f"the model's context of {limit:,} tokens less " + (
            f"max_gen_toks={gen} ({Path(task['dir']) / 'lm_eval.yaml'})" if generates else "its target"
        )
        n, bound = -(-len(r["prompt"]) // longest), "at least "  # a lower bound first: no 10 MB tokenization
        if n <= room:
            n, bound = len(tok(r["prompt"], add_special_tokens=False).input_ids), ""
        if n > room:
            raise ValueError(
                f"{where}: record {r['id']}: its prompt has {bound}{n:,} tokens, more than the {max(room, 0):,} "
                f"left of {what}; lm-eval would cut it silently"
            )


def finetune(
    cfg: dict,
    base_dir: Path | str,
    task_name: str,
    method_spec: dict,
    seed: int,
    data_dir: Path | str,
    out_state: Path | str,
    out_train: Path | str,
    threads: int | None = None,
    tasks_dir: Path = config.TASKS,
) -> None:
    """Train one method on one task with one seed: the task state, and train.json (its statistics, the reload
    check, the run's identity and provenance)."""
    with checkpoint.sole_trainer(Path(out_state).parent):  # one process trains a run, even after --unlock
        set_threads(threads)
        tasks = [config.load_task(t, tasks_dir) for t in config.union_members(cfg, task_name)]  # a union: its members
        settings = config.training_settings(cfg, method_spec)
        where, dtype = device(cfg), weights_dtype(cfg)
        model, tok, module, base_total = method_model(
            base_dir, method_spec, seed=seed, device=where, base_dropout=settings.get("base_dropout"), dtype=dtype
        )
        trainable, total = methods.count_parameters(model)
        methods.check_task_state(module.task_state(model), method_spec["name"])  # before the training, not after
        records, settings = _read_splits(data_dir, settings, method_spec["name"])
        # the run's identity: what it reads (data, method, task files, by content) and the profile keys that reach it
        settings, files, run_id = identity.training_run(
            cfg, task_name, method_spec, seed, data_dir, [t["dir"] for t in tasks], len(records["train"])
        )
        ckpt = checkpoint.Checkpoints(
            Path(out_state).parent / "checkpoints", settings["checkpoint_every"], provenance.config_hash(run_id)
        )
        batch = reload_check.fixed_batch(records["validation"], tok, settings["max_seq_len"])
        # what a load() that ignores the state would give: the untrained model. In fp32 this very model (attached,
        # not yet trained: `place` casts nothing); other dtypes build it again after the reload, placed for evaluation
        untrained = reload_check.logits(model, *batch) if trainable and dtype == torch.float32 else None
        stats = train.train(
            model,
            tok,
            records["train"],
            records["validation"],
            settings,
            seed,
            cfg.get("precision", "fp32"),
            checkpoints=ckpt,
            target_end=tasks[0].get("target_end", "newline"),  # a union's members agree (preflight)
            add_bos=cfg["model"].get("add_bos", False),
        )
        state = _trained_state(module, model, dtype, trainable, method_spec["name"])
        trained_logits = reload_check.logits(model, *batch)
        methods.save_state(state, out_state)
        adapter = finished_run.save_adapter(model, Path(out_state).parent)  # peft methods: a PeftModel folder too
        try:  # adapter/ is no declared output: a failure from here on (the reload check) must not leave it behind
            peak = train.peak_memory_bytes(where)  # before the check loads a second model
            stored = methods.state_summary(state)
            del model, state  # one model in memory at a time, even for a 7B full fine-tuning
            check = _reload(
                base_dir, method_spec, out_state, seed, where, dtype, batch, trained_logits, trainable, untrained
            )
            io.write_json(
                out_train,
                {
                    **_run_names(cfg, task_name, tasks, method_spec, seed, where),
                    **_counts(trainable, total, base_total),
                    **stored,
                    **_stored_file(out_state, adapter),
                    "reload_check": check,
                    **stats,
                    "peak_memory_bytes": peak,
                    "training": settings,
                    "provenance": provenance.record([run_id], seed, files),
                },
            )
        except BaseException:
            if adapter:
                shutil.rmtree(Path(out_state).parent / finished_run.ADAPTER, ignore_errors=True)
            raise
        ckpt.clear()  # the outputs are complete: the checkpoints are spent


def _trained_state(module, model, dtype: torch.dtype, trainable: int, name: str) -> dict:
    """The method's task state of the trained model, as stored (in the weights' dtype: the trained model is the
    rounded one). A method that trained parameters but returns none would have its untrained base evaluated."""
    state = as_stored(module.task_state(place(model, dtype)), dtype)
    if trainable and not state:
        raise ValueError(
            f"method '{name}': {trainable:,} parameters were trained but task_state() returned no tensors, so "
            f"nothing of the training would be evaluated (methods/{name}/method.py must return what it trains)"
        )
    return state


def _run_names(cfg: dict, task_name: str, tasks: list[dict], method_spec: dict, seed: int, where: str) -> dict:
    """What train.json says the run is: model, task (a union's members too), method and its folder, seed, and
    where and in which dtypes it ran."""
    union = {"trained_on": {"union": task_name, "tasks": [t["name"] for t in tasks]}} if len(tasks) > 1 else {}
    return {
        "model": cfg["model"]["name"],
        "task": task_name,
        **union,
        "method": method_spec["name"],
        "seed": seed,
        "method_folder": Path(method_spec["dir"]).name,  # a variant runs its parent's method.py
        "hyperparameters": method_spec["hyperparameters"],
        "precision": cfg.get("precision", "fp32"),
        "weights_dtype": cfg["model"].get("dtype", "fp32"),  # peftbench.load_run loads the run in it
        "device": where,
    }


def _read_splits(data_dir: Path | str, settings: dict, method: str) -> tuple[dict[str, list[dict]], dict]:
    """The train and validation records, and the settings with training.epochs turned into steps; a batch larger
    than the train split (preflight's bound, on the data read) is refused."""
    records = {
        s: io.read_jsonl(Path(data_dir) / f"{s}.jsonl", required=("id", "prompt", "target"))
        for s in ("train", "validation")
    }
    settings = config.with_epochs(settings, len(records["train"]))  # training.epochs -> steps
    if settings["steps"] and settings["batch_size"] > len(records["train"]):
        raise ValueError(
            f"{Path(data_dir) / 'train.jsonl'}: {len(records['train'])} records, fewer than the training.batch_size "
            f"{settings['batch_size']} of method '{method}': a batch holds records of one split"
        )
    return records, settings


def _counts(trainable: int, total: int, base_total: int) -> dict:
    return {
        "trainable_params": trainable,
        "total_params": total,
        "base_params": base_total,
        "trainable_percent": 100.0 * trainable / base_total,
    }


def _stored_file(out_state: Path | str, adapter: tuple | None) -> dict:
    """The stored file, and the storage column: the files a user ships (peft: the adapter folder's two files;
    else task_state)."""
    return {
        "stored_bytes_file": os.path.getsize(out_state),
        "task_state_sha256": identity.sha256_file(out_state),
        "shipped_files": adapter[0] if adapter else [Path(out_state).name],
        "shipped_bytes": adapter[1] if adapter else os.path.getsize(out_state),
    }


def _reload(base_dir, method_spec, out_state, seed, where, dtype, batch, trained_logits, trainable, untrained):
    """The reload check: the evaluated model is the trained model, i.e. the stored file, through the method's own
    load, reproduces the trained logits (and differs from the untrained model's, when anything was trained)."""
    reloaded, *_ = method_model(
        base_dir, method_spec, methods.load_state(out_state), seed=seed, device=where, dtype=dtype
    )
    reloaded_logits = reload_check.logits(reloaded, *batch)
    rounding = 0.0
    if dtype != torch.float32:  # the tolerance: what one more rounding of the weights does to these logits
        rounding = reload_check.rounding_noise(reloaded, *batch, reloaded_logits)
    del reloaded
    if trainable and untrained is None:
        bare, *_ = method_model(base_dir, method_spec, seed=seed, device=where, dtype=dtype)
        untrained = reload_check.logits(place(bare, dtype), *batch)
        del bare
    return reload_check.check(
        method_spec["name"], trained_logits, reloaded_logits, trainable, dtype, untrained, rounding
    )


def union_data(members: list[str], data_root: Path | str, out_dir: Path | str, seed: int) -> dict[str, int]:
    """A union's train/validation splits: its members' (as the data rule built them) concatenated, then shuffled
    with `seed`, as LLM-Adapters' commonsense_170k concatenates the eight training sets. Each record keeps its
    task in `task` and gets the id <task>/<id>, so ids stay unique; test splits stay per task."""
    import random

    counts = {}
    for split in ("train", "validation"):
        rows = [
            {**r, "id": f"{task}/{r['id']}", "task": task}
            for task in members
            for r in io.read_jsonl(Path(data_root) / task / f"{split}.jsonl", required=("id", "prompt", "target"))
        ]
        random.Random(seed).shuffle(rows)
        io.write_jsonl(Path(out_dir) / f"{split}.jsonl", rows)
        counts[split] = len(rows)
    return counts


def union_member(
    union_state: Path | str, union_train: Path | str, task_name: str, out_state: Path | str, out_train: Path | str
) -> None:
    """A member task's run folder from its union's training: a relative symlink to the one task state (and to
    peft's adapter/), and a train.json naming this task and where it was trained. Evaluation, the summary and
    load_run then read the folder as any run's; `ls -l` shows where the state lives. A symlink, not a hard link:
    Snakemake dates a symlink by itself, so the member's files stay newer than the union's and nothing reruns.
    All or nothing: the union's train.json must name its members and its state's sha256 (checked before anything
    is written), and a failure while linking removes what this call made, so no member folder is half-written."""
    trained = io.read_json(union_train)
    if task_name not in (trained.get("trained_on") or {}).get("tasks", ()):
        raise ValueError(f"{union_train}: not a union's training with member '{task_name}' (its trained_on)")
    identity.check_state(union_state, trained.get("task_state_sha256"), f"union member {task_name}")
    trained_on = {**trained["trained_on"], "run": str(Path(union_train).parent)}
    adapter = Path(union_state).parent / finished_run.ADAPTER
    links = [(union_state, Path(out_state))]
    if adapter.is_dir():
        links.append((adapter, Path(out_state).parent / finished_run.ADAPTER))
    made = []
    try:
        for src, dst in links:
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_dir() and not dst.is_symlink():  # left by an earlier attempt
                shutil.rmtree(dst)
            dst.unlink(missing_ok=True)
            dst.symlink_to(os.path.relpath(src, dst.parent))
            made.append(dst)
        io.write_json(out_train, {**trained, "task": task_name, "trained_on": trained_on})  # atomic: last
    except BaseException:
        for dst in made:
            dst.unlink(missing_ok=True)
        raise


def evaluate_job(
    cfg: dict,
    base_dir: Path | str,
    task_name: str,
    method_spec: dict,
    state_path: Path | str,
    test_file: Path | str,
    out_json: Path | str,
    out_samples: Path | str,
    out_latency: Path | str,
    threads: int | None = None,
    tasks_dir: Path = config.TASKS,
    train_file: Path | str | None = None,
    seed: int = 0,
    forgetting: tuple | None = None,
) -> None:
    """lm-eval scores, then generation latency, on one loaded model (one model load, one process).
    `train_file`: where a few-shot method draws its demonstrations (seeded with the run's `seed`);
    `forgetting`: (general text sample, base model's loss JSON, output JSON), peftbench.stages.forgetting."""
    set_threads(threads)
    trained = io.read_json(Path(state_path).parent / "train.json")  # what fine-tuning stored, and its sha256
    sha = identity.check_state(state_path, trained.get("task_state_sha256"), "evaluation")
    task = config.load_task(task_name, tasks_dir)
    # utils.py may be newer than the data stage's check of it: its metric names again, before the model loads
    evaluate.check_scorer(task["dir"], io.read_jsonl(test_file)[0], str(test_file), aggregate=False)
    model, tok, *_ = method_model(
        base_dir, method_spec, methods.load_state(state_path), device=device(cfg), dtype=weights_dtype(cfg)
    )
    if forgetting:
        from peftbench.stages import forgetting as fg

        fg.measure(cfg, model, tok, *forgetting)
    precision = cfg.get("precision", "fp32")
    start = time.perf_counter()
    prompting = method_spec.get("prompting", {})
    run_dir = Path(out_json).parent  # lm_eval.json names what it scored, as `--model peftbench` would
    results, samples = evaluate.run(
        model,
        tok,
        task["dir"],
        test_file,
        batch_size=cfg["evaluation"]["batch_size"],
        precision=precision,
        target_end=task.get("target_end", "newline"),
        prompting=prompting,
        train_file=train_file,
        seed=seed,
        add_bos=cfg["model"].get("add_bos", False),
        prefill_tokens=cfg["evaluation"].get("prefill_tokens", 0) if method_spec.get("chunked_prefill") else 0,
        position_wise=bool(method_spec.get("chunked_prefill") or method_spec.get("position_wise_decoding")),
        task_file=run_dir / evaluate.TASK_FILE,
    )
    from lm_eval.utils import handle_non_serializable

    results["config"].update(
        {"model": "peftbench", "model_args": f"run={run_dir}", **finished_run.record(run_dir, method_spec["name"])}
    )
    results["peftbench"] = {
        "wall_time_s": round(time.perf_counter() - start, 3),
        **_evaluation_record(results, task, tok, prompting, run_dir, seed),
        **_evaluated(trained, sha),
    }

    lat = cfg["latency"]
    prompts = [r["prompt"] for r in io.read_jsonl(test_file, required=("prompt",))[: lat["prompts"]]]
    timing = latency.per_token_ms(model, tok, prompts, lat["new_tokens"], lat["repeats"], precision)
    timing["threads"] = torch.get_num_threads()
    timing.update(_evaluated(trained, sha))

    io.write_jsonl(out_samples, [evaluate.sample_record(s) for s in samples[evaluate.task_name(task_name)]])
    io.write_json(out_latency, timing)
    io.write_text(out_json, json.dumps(results, indent=2, default=handle_non_serializable) + "\n")


def _evaluation_record(results: dict, task: dict, tok, prompting: dict, run_dir: Path, seed: int) -> dict:
    """lm_eval.json's own part: the scores, how the prompts were built, and lm-eval's command for the same scores."""
    chat = evaluate.uses_chat_template(prompting, tok)
    return {
        "scores": evaluate.scores(results, task["name"]),
        "main_metric": task["main_metric"],
        "chat_template": chat,
        "num_fewshot": int(prompting.get("num_fewshot", 0)),
        # the same scores from lm-eval's own CLI (README, tests/test_runs.py)
        "lm_eval_command": evaluate.cli_command(
            run_dir, results["config"]["batch_size"], results["config"]["device"], seed, chat
        ),
    }


def _evaluated(trained, sha):
    """Which trained run an evaluation's files belong to: the summary refuses a mix of runs."""
    return {"task_state_sha256": sha, "config_hash": (trained.get("provenance") or {}).get("config_hash")}


def workflow_tasks(snakemake: Snakemake) -> Path:
    """The task folders of the workflow a job runs in (a copy of the workflow may hold tasks this checkout lacks)."""
    return Path(os.path.normpath(snakemake.scriptdir)).parents[1] / "tasks"


class logged:
    """Run a job with stdout/stderr in the rule's log file; the traceback lands there too."""

    def __init__(self, snakemake: Snakemake):
        import contextlib

        self.stack, self.path = contextlib.ExitStack(), (snakemake.log[0] if snakemake.log else None)

    def __enter__(self):
        import contextlib

        from peftbench.malloc import keep_freed_memory

        keep_freed_memory()  # every job passes here: freed tensors reused, not re-zeroed by the kernel (malloc.py)
        if self.path:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            f = self.stack.enter_context(open(self.path, "w"))
            self.stack.enter_context(contextlib.redirect_stdout(f))
            self.stack.enter_context(contextlib.redirect_stderr(f))
            import faulthandler

            # a crash in native code (a segfault in a kernel or an extension) leaves its Python stack in the log,
            # where the report reads why a run is missing, instead of a log that just stops
            faulthandler.enable(file=f)
            self.stack.callback(faulthandler.disable)
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None:
            import traceback

            traceback.print_exception(kind, value, tb)
        self.stack.close()
        return False
