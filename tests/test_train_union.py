"""ReFT Table 1's setup (Wu et al. 2024, Sec. 4.2): one model per (method, seed) trained on the union of the
eight commonsense training sets (LLM-Adapters' commonsense_170k), evaluated on each set. Profile key
`train_union`: the union's data, its one training, the member run folders, the epochs, what preflight refuses."""

import math

import pytest
import torch
from test_run_identity import data, profile
from test_train import RECORDS

from peftbench import config, identity, io, methods, preflight
from peftbench.model import finished_run
from peftbench.report import aggregate
from peftbench.stages import pipeline, reload_check

MEMBERS = ["qa", "summarization"]  # two task folders that end their targets alike
DEFAULT_SIZES = {"train": 8, "validation": 4, "test": 2}


def union_profile(**training):
    cfg = profile()
    cfg["tasks"] = {t: {"train": 8, "validation": 4, "test": 2} for t in MEMBERS}
    cfg["train_union"] = {"name": "both", "tasks": MEMBERS, "seed": 3}
    cfg["training"] = {**cfg["training"], "checkpoint_every": 0, **training}
    return cfg


def member_data(root):
    """Each member's splits as the data rule writes them: the same records, ids and targets told apart."""
    for task in MEMBERS:
        data(root / task, [{**r, "target": f"{r['target']} {task}"} for r in RECORDS])
    return root


def test_union_splits_are_the_members_concatenated_and_shuffled(tmp_path):
    root = member_data(tmp_path / "data")
    counts = pipeline.union_data(MEMBERS, root, root / "both", seed=3)
    for split in ("train", "validation"):
        union = io.read_jsonl(root / "both" / f"{split}.jsonl")
        members = {t: io.read_jsonl(root / t / f"{split}.jsonl") for t in MEMBERS}
        assert counts[split] == len(union) == sum(map(len, members.values()))
        assert len({r["id"] for r in union}) == len(union), "ids stay unique across members"
        for task, recs in members.items():  # every member record, once, tagged with its task, id <task>/<id>
            assert sorted((r["id"], r["prompt"], r["target"]) for r in union if r["task"] == task) == sorted(
                (f"{task}/{r['id']}", r["prompt"], r["target"]) for r in recs
            )
        assert {r["task"] for r in union} == set(MEMBERS)
    first = io.read_jsonl(root / "both" / "train.jsonl")
    assert [r["task"] for r in first] != sorted(r["task"] for r in first), "shuffled, not member after member"
    pipeline.union_data(MEMBERS, root, root / "again", seed=3)
    assert io.read_jsonl(root / "again" / "train.jsonl") == first, "the same seed, the same order"


def test_one_training_on_the_union_serves_every_member(tiny_dir, method_specs, tmp_path):
    cfg, spec = union_profile(epochs=2), method_specs["lora"]
    root = member_data(tmp_path / "data")
    pipeline.union_data(MEMBERS, root, root / "both", seed=3)
    union_run = tmp_path / "tiny" / "both" / "lora" / "seed0"
    pipeline.finetune(cfg, tiny_dir, "both", spec, 0, root / "both", *_outputs(union_run))
    trained = io.read_json(union_run / "train.json")
    n_train = len(io.read_jsonl(root / "both" / "train.jsonl"))
    # training.epochs: passes over the union, one optimizer step per batch
    assert trained["steps"] == len(trained["loss_curve"]) == math.ceil(2 * n_train / cfg["training"]["batch_size"])
    assert trained["task"] == "both" and trained["trained_on"] == {"union": "both", "tasks": MEMBERS}
    files = trained["provenance"]["files"]  # the identity covers every member's task folder and the union's data
    assert {f"{t}/task.yaml" for t in MEMBERS} <= set(files["task"])
    assert files["data"]["train.jsonl"] == identity.sha256_file(root / "both" / "train.jsonl")

    logits = {}
    for task in MEMBERS:
        member = tmp_path / "tiny" / task / "lora" / "seed0"
        pipeline.union_member(*_outputs(union_run), task, *_outputs(member))
        assert (member / "task_state.safetensors").resolve() == (union_run / "task_state.safetensors").resolve()
        assert (member / "adapter").is_symlink(), "peft's adapter folder too"
        copy = io.read_json(member / "train.json")
        assert copy["task"] == task and copy["trained_on"] == {**trained["trained_on"], "run": str(union_run)}
        assert copy["task_state_sha256"] == identity.sha256_file(member / "task_state.safetensors")
        assert copy["provenance"]["config_hash"] == trained["provenance"]["config_hash"]
        model, tok = finished_run.load_run(member, base=tiny_dir)  # the member folder reads as any run
        batch = reload_check.fixed_batch(RECORDS, tok, 128)
        logits[task] = reload_check.logits(model, *batch)
    union_model, _ = finished_run.load_run(union_run, base=tiny_dir)
    for task in MEMBERS:
        assert torch.equal(logits[task], reload_check.logits(union_model, *batch)), "one model for every member"


def _outputs(run):
    return run / "task_state.safetensors", run / "train.json"


def _fake_union_run(run, **train):
    """A union's run folder as finetune leaves it: a state, peft's adapter/, train.json with its sha256."""
    run.mkdir(parents=True)
    methods.save_state({"w": torch.ones(2)}, run / "task_state.safetensors")
    (run / "adapter").mkdir()
    trained = {"task": "both", "trained_on": {"union": "both", "tasks": MEMBERS}}
    trained["task_state_sha256"] = identity.sha256_file(run / "task_state.safetensors")
    io.write_json(run / "train.json", {**trained, **train})
    return run


@pytest.mark.parametrize(
    "broken,message",
    [
        ({"trained_on": None}, r"not a union's training with member 'qa'"),  # a task's own run, not a union's
        ({"task_state_sha256": "0" * 64}, r"differs from the 0000"),  # the state was replaced after training
    ],
)
def test_a_member_folder_is_all_or_nothing(tmp_path, broken, message):
    union_run = _fake_union_run(tmp_path / "both" / "lora" / "seed0", **broken)
    member = tmp_path / "qa" / "lora" / "seed0"
    with pytest.raises(ValueError, match=message):
        pipeline.union_member(*_outputs(union_run), "qa", *_outputs(member))
    assert not member.exists() or not any(member.iterdir()), "nothing half-written"


def test_a_failed_member_write_removes_its_links(tmp_path, monkeypatch):
    union_run, member = _fake_union_run(tmp_path / "both" / "lora" / "seed0"), tmp_path / "qa" / "lora" / "seed0"

    def disk_full(path, obj):
        raise OSError("No space left on device")

    monkeypatch.setattr(pipeline.io, "write_json", disk_full)
    with pytest.raises(OSError, match="No space"):
        pipeline.union_member(*_outputs(union_run), "qa", *_outputs(member))
    assert list(member.iterdir()) == [], "the state and adapter links it made are gone"
    monkeypatch.undo()
    pipeline.union_member(*_outputs(union_run), "qa", *_outputs(member))  # a rerun completes the folder
    assert sorted(p.name for p in member.iterdir()) == ["adapter", "task_state.safetensors", "train.json"]


def test_summary_rows_stay_per_member_and_name_the_union(tiny_dir, method_specs, tmp_path, monkeypatch):
    train = {"task": "qa", "trained_on": {"union": "both", "tasks": MEMBERS}}
    monkeypatch.setattr(aggregate, "_json", lambda path: _fake_run(path.name, train))
    monkeypatch.setattr(aggregate.fairness, "summary_columns", lambda run_dir: {})
    row = aggregate.row(tmp_path)
    assert row["task"] == "qa" and row["trained_on"] == "both"
    train.pop("trained_on")
    assert "trained_on" not in aggregate.row(tmp_path), "a task's own runs have no such column"


def _fake_run(name, train):
    ev = {"peftbench": {"main_metric": "f1", "scores": {"f1": 0.5}, "wall_time_s": 1.0}}
    tr = {"model": "tiny", "method": "lora", "seed": 0, "trainable_params": 1, "trainable_percent": 0.1,
          "base_params": 1000, "stored_bytes_file": 8, "wall_time_s": 1.0, "tokens_per_s": 1.0, "step_time_s": 1.0,
          "peak_memory_bytes": 1, "loss_curve": [1.0], "val_loss_before": 2.0, "val_loss_after": 1.0,
          "provenance": {"git": {"commit": "x", "dirty": False}, "config_hash": "h"}, **train}  # fmt: skip
    return {"train.json": tr, "lm_eval.json": ev, "latency.json": {"ms_per_token_median": 1.0}}[name]


def test_epochs_leave_a_method_that_trains_nothing_at_zero():
    assert config.with_epochs({"steps": 0, "epochs": 6, "batch_size": 32}, 1000)["steps"] == 0
    assert config.with_epochs({"steps": 40, "batch_size": 32}, 1000)["steps"] == 40


@pytest.mark.parametrize(
    "change,message",
    [
        ({"name": "qa"}, r"train_union.name': 'qa' is a task's name"),
        ({"tasks": ["qa", "xsum"]}, r"train_union.tasks': xsum not among the profile's tasks"),
        ({"tasks": ["qa", "e2e"]}, r"train_union.tasks': the members end their targets differently"),
    ],
)
def test_preflight_refuses_a_union_it_cannot_build(change, message):
    cfg = config.merge(config.load_profile(config.CONFIG / "config.yaml"), {"tasks": {"e2e": dict(DEFAULT_SIZES)}})
    cfg["train_union"] = {"name": "both", "tasks": ["qa", "summarization"], **change}
    with pytest.raises(config.ConfigError, match=message):
        preflight.union(cfg, {t: config.load_task(t) for t in config.selected_tasks(cfg)}, "config")


def test_preflight_reads_the_workflows_task_folders(tmp_path):
    """A copied workflow may hold task folders this checkout lacks: the union's name is checked against its own."""
    cfg = config.load_profile(config.CONFIG / "config.yaml")
    cfg["train_union"] = {"name": "both", "tasks": ["qa", "summarization"]}
    specs = {t: config.load_task(t) for t in config.selected_tasks(cfg)}
    assert not (config.TASKS / "both").exists()
    preflight.union(cfg, specs, "config", tmp_path)  # no task folder 'both' in this workflow: accepted
    (tmp_path / "both").mkdir()
    with pytest.raises(config.ConfigError, match=r"train_union.name': 'both' is a task's name"):
        preflight.union(cfg, specs, "config", tmp_path)


def test_preflight_refuses_a_learning_rate_search_on_a_union():
    cfg = config.load_profile(config.CONFIG / "config.yaml", config.CONFIG / "tuning.yaml")
    cfg["train_union"] = {"name": "both", "tasks": ["qa", "summarization"]}
    with pytest.raises(config.ConfigError, match=r"tunes per task, not on a union"):
        preflight.union(cfg, {t: config.load_task(t) for t in config.selected_tasks(cfg)}, "config")


def test_the_reft_profile_trains_once_on_the_eight_sets_for_the_papers_epochs():
    """pyreft examples/loreft/README.md, commonsense: -e 6, batch 16 x 2 accumulation, -lr 9e-4, warm-up 0.1."""
    cfg = config.load_profile(config.CONFIG / "config.yaml", config.CONFIG / "paper-reft-commonsense.yaml")
    union = cfg["train_union"]
    assert union["tasks"] == config.selected_tasks(cfg)
    loreft = config.training_settings(cfg, config.profile_methods(cfg)["loreft"])
    n_train = sum(cfg["tasks"][t]["train"] for t in union["tasks"])
    steps = config.with_epochs(loreft, n_train)["steps"]
    assert [loreft[k] for k in ("epochs", "batch_size", "learning_rate", "warmup_ratio")] == [6, 32, 9e-4, 0.1]
    assert steps == math.ceil(6 * n_train / 32)
    assert cfg["model"]["dtype"] == cfg["precision"] == "bf16"


def test_a_members_link_to_a_deleted_union_state_is_removed_at_dag_build(tmp_path, capsys):
    """Issue 27: deleting the union's task state left its members' links dangling, and Snakemake stopped every later
    run at DAG build ("a concurrent process has deleted it"). The links are removed; the member is linked again."""
    union = tmp_path / "m/union/lora/seed0"
    member = tmp_path / "m/qa/lora/seed0"
    union.mkdir(parents=True)
    member.mkdir(parents=True)
    methods.save_state({"w": torch.ones(2)}, union / "task_state.safetensors")
    (member / "task_state.safetensors").symlink_to(union / "task_state.safetensors")
    preflight.stored_states(tmp_path)
    assert (member / "task_state.safetensors").is_symlink()  # a live link stays
    (union / "task_state.safetensors").unlink()
    preflight.stored_states(tmp_path)
    assert not (member / "task_state.safetensors").is_symlink()
    assert "a link to a deleted union run: it is linked again" in capsys.readouterr().err
