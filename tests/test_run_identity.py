"""No silent wrong row (issue 17, items 1-2), on the tiny model through the fine-tuning job itself
(peftbench.stages.pipeline.finetune, what the DAG's finetune rule runs):

- a checkpoint is resumed only into the run that wrote it: killed after a checkpoint, then rerun after a
  change of its data, its method's code or a profile key, the run starts from step 0 (unchanged: resumes);
  an unreadable checkpoint is discarded with a warning;
- the evaluated model is the trained model: a method whose task_state stores nothing, or whose load
  ignores the state, fails the job with a sentence naming the method; the stored state's sha256 is
  recorded and a replaced state is refused where it is read."""

import shutil

import pytest
from test_train import RECORDS

from peftbench import identity, io
from peftbench.stages import checkpoint, pipeline
from peftbench.stages.reload_check import ReloadMismatch


def profile(**tasks):
    return {
        "model": {"name": "tiny", "source": "tiny-random"},
        "tasks": {"qa": {"train": 8, "validation": 4, "test": 2, **tasks}},
        "training": {"steps": 6, "batch_size": 4, "learning_rate": 3e-3, "max_seq_len": 128, "checkpoint_every": 2},
        "precision": "fp32",
        "device": "cpu",
    }


def data(folder, records=RECORDS):
    io.write_jsonl(folder / "train.jsonl", records)
    io.write_jsonl(folder / "validation.jsonl", records[:4])
    return folder


class Killed(BaseException):
    """Stands for SIGKILL right after a checkpoint was written (the outputs never are)."""


def finetune(tiny_dir, cfg, spec, data_dir, run):
    pipeline.finetune(cfg, tiny_dir, "qa", spec, 0, data_dir, run / "task_state.safetensors", run / "train.json")
    return io.read_json(run / "train.json")


def killed_run(tiny_dir, cfg, spec, data_dir, run, monkeypatch):
    save = checkpoint.Checkpoints.save

    def save_then_die(self, *args):
        save(self, *args)
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(checkpoint.Checkpoints, "save", save_then_die)
        with pytest.raises(Killed):
            finetune(tiny_dir, cfg, spec, data_dir, run)
    assert (run / "checkpoints" / "step000002").is_dir() and not (run / "train.json").exists()


def edit_a_record(d, _spec, cfg):
    records = [dict(r) for r in RECORDS]
    records[3]["target"] = "casa nueva"
    data(d, records)
    return _spec, cfg


def edit_method_py(d, spec, cfg):
    path = d.parent / "lora-copy"
    shutil.copytree(spec["dir"], path)
    (path / "method.py").write_text((path / "method.py").read_text() + "\n# a change of code\n")
    return {**spec, "dir": str(path)}, cfg


def change_data_seed(d, spec, cfg):
    return spec, profile(seed=7)


@pytest.mark.parametrize(
    "change,resumes", [(None, True), (edit_a_record, False), (edit_method_py, False), (change_data_seed, False)]
)
def test_a_killed_run_resumes_only_if_nothing_that_determines_it_changed(
    tiny_dir, method_specs, tmp_path, monkeypatch, change, resumes
):
    spec, cfg, d, run = method_specs["lora"], profile(), data(tmp_path / "data"), tmp_path / "run"
    killed_run(tiny_dir, cfg, spec, d, run, monkeypatch)
    if change:
        spec, cfg = change(d, spec, cfg)
    train = finetune(tiny_dir, cfg, spec, d, run)
    assert train["resumed_from_step"] == (2 if resumes else None)
    assert not (run / "checkpoints").exists()


def test_config_hash_covers_file_contents_and_records_them(tiny_dir, method_specs, tmp_path):
    spec, d = method_specs["lora"], data(tmp_path / "data")
    a = finetune(tiny_dir, profile(), spec, d, tmp_path / "a")
    edit_a_record(d, spec, None)
    b = finetune(tiny_dir, profile(), spec, d, tmp_path / "b")
    assert a["provenance"]["config_hash"] != b["provenance"]["config_hash"]
    files = b["provenance"]["files"]
    assert files["data"]["train.jsonl"] == identity.sha256_file(d / "train.jsonl")
    assert set(files["method"]) == {"method.py", "method.yaml"} and {"task.yaml", "lm_eval.yaml", "utils.py"} <= set(
        files["task"]
    )


def test_an_unreadable_checkpoint_is_discarded_with_a_warning(tiny_dir, method_specs, tmp_path, monkeypatch):
    spec, cfg, d, run = method_specs["lora"], profile(), data(tmp_path / "data"), tmp_path / "run"
    killed_run(tiny_dir, cfg, spec, d, run, monkeypatch)
    weights = run / "checkpoints" / "step000002" / "trainable.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # torn by a full disk
    with pytest.warns(
        UserWarning, match=r"step000002: unreadable \(SafetensorError.*\); discarded, starting from step 0"
    ):
        train = finetune(tiny_dir, cfg, spec, d, run)
    assert train["resumed_from_step"] is None and len(train["loss_curve"]) == 6


def broken_copy(spec, tmp_path, name, old, new):
    path = tmp_path / name
    shutil.copytree(spec["dir"], path)
    code = (path / "method.py").read_text()
    assert old in code
    (path / "method.py").write_text(code.replace(old, new))
    return {**spec, "name": name, "dir": str(path)}


def test_a_trained_method_that_stores_nothing_is_an_error(tiny_dir, method_specs, tmp_path):
    spec = broken_copy(
        method_specs["lora"], tmp_path, "empty-state", "    return get_peft_model_state_dict(model)", "    return {}"
    )
    with pytest.raises(
        ValueError,
        match=r"method 'empty-state': [\d,]+ parameters were trained but task_state\(\) "
        r"returned no tensors",
    ):
        finetune(tiny_dir, profile(), spec, data(tmp_path / "data"), tmp_path / "run")
    assert not (tmp_path / "run" / "train.json").exists()


def test_a_task_state_that_holds_a_non_tensor_fails_before_training(tiny_dir, method_specs, tmp_path):
    """A bare AttributeError after the whole training before (issue 27): now named, before the first step."""
    spec = broken_copy(
        method_specs["lora"],
        tmp_path,
        "float-state",
        "    return get_peft_model_state_dict(model)",
        '    return {**get_peft_model_state_dict(model), "scale": 2.0}',
    )
    with pytest.raises(
        TypeError,
        match=r"methods/float-state/method.py: task_state\(\) must return \{name: tensor\}; 'scale' holds a float",
    ):
        finetune(tiny_dir, profile(), spec, data(tmp_path / "data"), tmp_path / "run")
    assert not (tmp_path / "run" / "train.json").exists() and not (tmp_path / "run" / "checkpoints").exists()


def test_a_load_that_ignores_the_state_is_an_error(tiny_dir, method_specs, tmp_path):
    spec = broken_copy(
        method_specs["lora"],
        tmp_path,
        "ignore-state",
        "    result = set_peft_model_state_dict(model, state)",
        "    result = set_peft_model_state_dict(model, {})",
    )
    with pytest.raises(
        ReloadMismatch,
        match=r"method 'ignore-state': the model rebuilt by its load\(\) from the stored "
        r"task state does not reproduce the trained model",
    ):
        finetune(tiny_dir, profile(), spec, data(tmp_path / "data"), tmp_path / "run")
    assert not (tmp_path / "run" / "train.json").exists()


def test_the_stored_state_is_checked_where_it_is_read(tiny_dir, method_specs, tmp_path):
    """train.json records the state's sha256 and the reload check; a state replaced afterwards (here: another
    run's) is refused by the evaluation job before it loads anything."""
    spec, d = method_specs["lora"], data(tmp_path / "data")
    train = finetune(tiny_dir, profile(), spec, d, tmp_path / "a")
    assert train["task_state_sha256"] == identity.sha256_file(tmp_path / "a" / "task_state.safetensors")
    assert train["reload_check"]["max_abs_logit_diff"] <= train["reload_check"]["tolerance"]
    edit_a_record(d, spec, None)
    finetune(tiny_dir, profile(), spec, d, tmp_path / "b")
    shutil.copy(tmp_path / "b" / "task_state.safetensors", tmp_path / "a" / "task_state.safetensors")
    with pytest.raises(
        ValueError, match=r"a/task_state.safetensors: sha256 .* differs from .* its train.json recorded"
    ):
        pipeline.evaluate_job(
            profile(),
            tiny_dir,
            "qa",
            spec,
            tmp_path / "a" / "task_state.safetensors",
            None,
            *(tmp_path / f for f in ("lm_eval.json", "samples.jsonl", "latency.json")),
        )


def test_untracked_project_files_make_the_tree_dirty(tmp_path, monkeypatch):
    """A run of an uncommitted method folder must not claim a clean commit (issue 18, item 4)."""
    import subprocess

    from peftbench import provenance

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / ".gitignore").write_text("results/\n")
    git("add", ".gitignore")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "x.json").write_text("{}")  # generated, git-ignored: still clean
    assert provenance.git_commit()["dirty"] is False
    (tmp_path / "methods" / "vera").mkdir(parents=True)
    (tmp_path / "methods" / "vera" / "method.py").write_text("")  # a new, uncommitted method folder
    assert provenance.git_commit()["dirty"] is True
