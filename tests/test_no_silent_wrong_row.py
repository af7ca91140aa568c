"""No silent wrong row (issue 17, items 3-5 and 7's data stage): a stale table is never reported as up to
date, a corrupt or inconsistent run is listed with its reason and never summarised, the report never
sinks nor writes outside the project, a pickle is never loaded, and bad records fail at the data stage.
No model is trained here: runs are written as the DAG writes them, the DAG is checked with dry runs."""

import json
import re
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import copy_project
from conftest import snakemake as run_snakemake
from test_report import TASKS, write_run
from test_workflow import job_counts

from peftbench import io, methods
from peftbench.data import build
from peftbench.model import base_model
from peftbench.report import aggregate
from peftbench.stages import pipeline


# ---- the DAG: every file a row is built from is an input, a missing one is rebuilt ------------------
def snakemake(workdir, *args):
    return run_snakemake(workdir, *args, configfiles=("config/smoke.yaml", "config/one.yaml"))


@pytest.fixture(scope="module")
def done_tree(tmp_path_factory):
    """A copy of the workflow whose every output exists and is up to date (files made, then `--touch`ed in
    DAG order): what a finished smoke run looks like to Snakemake, without running it."""
    d = copy_project(tmp_path_factory.mktemp("stale"))
    (d / "config/one.yaml").write_text(
        yaml.safe_dump(
            {
                "tasks": {"qa": {"train": 4, "validation": 2, "test": 2}, "summarization": None, "translation": None},
                "methods": ["lora", "zero-shot"],
                "costs": [],
            }
        )
    )
    for line in snakemake(d, "--summary").splitlines():
        cells = line.split("\t")
        if len(cells) > 2 and cells[2] in (
            "base_model",
            "data",
            "general_text",
            "general_loss_base",
            "finetune",
            "evaluate",
            "summary",
            "report",
        ):
            path = d / cells[0]
            if cells[2] == "base_model":
                path.mkdir(parents=True, exist_ok=True)
            elif path.suffix == ".safetensors":  # a state is read at DAG build (its header): a whole one
                path.parent.mkdir(parents=True, exist_ok=True)
                methods.save_state({"w": torch.ones(4)}, path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("x")
    snakemake(d, "--touch")
    assert "Nothing to be done" in snakemake(d, "-n")
    return d


def test_a_state_truncated_in_place_is_named_at_dag_build(done_tree):
    """Issue 27: a state cut short with its mtime kept looked up to date ("Nothing to be done"); only the
    report noticed. Now the DAG build names it and what retrains it, before any job."""
    import os

    path = done_tree / "results/smoke/tiny-random-llama/qa/lora/seed0/task_state.safetensors"
    whole, stat = path.read_bytes(), path.stat()
    try:
        path.write_bytes(whole[:-8])
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        with pytest.raises(AssertionError) as failed:  # conftest's snakemake: a non-zero exit, with its output
            snakemake(done_tree, "-n")
        out = " ".join(str(failed.value).split())
        assert "task_state.safetensors: not a valid safetensors file (tensor data extends past the end" in out
        assert f"`rm {path.relative_to(done_tree)}` and the next run retrains that run" in out
    finally:
        path.write_bytes(whole)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert "Nothing to be done" in snakemake(done_tree, "-n")


@pytest.mark.parametrize(
    "deleted,jobs",
    [
        ("train.json", {"finetune": 1, "evaluate": 1, "summary": 1, "report": 1, "all": 1}),
        ("task_state.safetensors", {"finetune": 1, "evaluate": 1, "summary": 1, "report": 1, "all": 1}),
        ("lm_eval.json", {"evaluate": 1, "summary": 1, "report": 1, "all": 1}),
    ],
)
def test_a_deleted_run_file_is_rebuilt_and_the_table_with_it(done_tree, deleted, jobs):
    """Snakemake does not rebuild a missing intermediate file whose consumers look up to date; before the
    run files were targets, deleting one left "Nothing to be done" and summary.csv kept the old row."""
    path = done_tree / "results/smoke/tiny-random-llama/qa/lora/seed0" / deleted
    saved = path.read_bytes()
    path.unlink()
    try:
        assert job_counts(snakemake(done_tree, "-n")) == jobs
    finally:
        path.write_bytes(saved)
        snakemake(done_tree, "--touch")


# ---- the summary and the report: corrupt or inconsistent runs are listed, never summarised -----------
@pytest.fixture
def runs(tmp_path):
    """Complete runs of three tasks x two methods, and the profile that names them (paths inside the project)."""
    for t in TASKS:
        for m in ("full", "lora"):
            write_run(tmp_path / "results", t, m, 0)
    (tmp_path / "profile.yaml").write_text(
        yaml.safe_dump(
            {
                "results": "results",
                "reports": "reports",
                "model": {"name": "tiny", "source": "tiny-random"},
                "seeds": [0],
                "methods": ["full", "lora"],
                "tasks": {t: {"train": 4, "validation": 2, "test": 2} for t in TASKS},
            }
        )
    )
    return tmp_path


def regenerate(root, *args):
    return subprocess.run(
        [sys.executable, "-m", "peftbench.report", "--configfile", "profile.yaml", *args],
        cwd=root,
        capture_output=True,
        text=True,
    )


def test_a_truncated_lm_eval_json_is_listed_and_the_rest_renders(runs):
    path = runs / "results/tiny/qa/lora/seed0/lm_eval.json"
    path.write_text(path.read_text()[:40])
    res = regenerate(runs)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "5/6 runs" in res.stdout
    md = (runs / "reports/report.md").read_text()
    missing = md.split("\n## Missing runs\n")[1].split("\n## ")[0].strip()
    assert re.fullmatch(
        r"qa / lora / seed0: corrupt: results/tiny/qa/lora/seed0/lm_eval.json: not valid JSON "
        r"\(.*, line \d+\): truncated or garbled",
        missing,
    ), missing
    assert "| full |" in md.split("\n## qa\n")[1] and "| lora |" in md.split("\n## summarization\n")[1]


def test_a_run_whose_files_disagree_is_not_summarised(runs, capsys):
    """lm_eval.json of another training (a re-evaluation of an older state that failed half way, a copy
    from another run): the config hash and the state's sha256 differ from train.json's."""
    d = runs / "results/tiny"
    shutil.copy(d / "qa/full/seed0/lm_eval.json", d / "qa/lora/seed0/lm_eval.json")
    (d / "translation/full/seed0/task_state.safetensors").write_bytes(b"swapped")
    rows, problems = aggregate.read_runs(sorted(d.glob("*/*/seed0")))
    assert len(rows) == 4 and {(p.parts[-3], p.parts[-2]) for p, _ in problems} == {
        ("qa", "lora"),
        ("translation", "full"),
    }
    reasons = dict(problems)
    assert reasons[d / "qa/lora/seed0"].endswith(
        "lm_eval.json: evaluated another training than its train.json's "
        "(task state sha256 / config hash differ): stale, re-evaluate"
    )
    assert "task_state.safetensors: sha256 differs from its train.json's" in reasons[d / "translation/full/seed0"]
    df = aggregate.summarize(sorted(d.glob("*/*/seed0")), runs / "summary.csv")
    assert len(df) == 4 and not ((df.task == "qa") & (df.method == "lora")).any()
    assert "not summarised: " in capsys.readouterr().out


@pytest.mark.parametrize("args,field", [((), "field 'reports'"), (("--reports", "/tmp/elsewhere"), "option --reports")])
def test_the_report_command_writes_only_inside_the_project(runs, args, field):
    if not args:
        profile = yaml.safe_load((runs / "profile.yaml").read_text())
        (runs / "profile.yaml").write_text(yaml.safe_dump({**profile, "reports": "../somewhere"}))
    res = regenerate(runs, *args)
    assert (
        res.returncode != 0
        and f"{field}: " in res.stderr
        and "must be a relative path inside the project" in res.stderr
    )
    assert "Traceback" not in res.stderr
    assert not (runs.parent / "somewhere").exists() and not (runs / "reports").exists()


def test_a_profile_yaml_error_names_file_and_line(runs):
    (runs / "profile.yaml").write_text("seeds: [0\nmethods: [lora]\n")
    res = regenerate(runs)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert re.search(
        r"profile.yaml:2: not valid YAML \(while parsing a flow sequence; expected ',' or '\]', but got ':'", res.stderr
    ), res.stderr


# ---- safetensors only, really -------------------------------------------------------------------------
def test_a_pickle_beside_a_decoy_safetensors_is_never_loaded(tiny_dir, tmp_path):
    """The old check (any *.safetensors) let transformers fall back to pytorch_model.bin: a marker weight from
    the pickle reached the base model. Now only model.safetensors is read, or nothing loads."""
    folder = tmp_path / "decoy-model"
    shutil.copytree(tiny_dir, folder)
    model, _ = base_model.load(tiny_dir)
    state = {k: torch.full_like(v, 7.0) for k, v in model.state_dict().items()}  # the marker
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "decoy.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(OSError, match="model.safetensors"):
        base_model.load_source(str(folder))


# ---- the data stage: records that do not fit, and test records that leak from training ----------------
def local_qa(tmp_path, train, test):
    task = {
        "name": "mine",
        "dir": str(tmp_path),
        "fields": ["question"],
        "prompt": "Q: {question}\nA:",
        "source": {"type": "jsonl", "files": {s: f"{s}.jsonl" for s in ("train", "validation", "test")}},
    }
    for split, rows in (("train", train), ("validation", train[:1]), ("test", test)):
        io.write_jsonl(tmp_path / f"{split}.jsonl", rows)
    return task


def test_test_records_that_occur_in_training_are_a_loud_warning(tmp_path, capsys):
    train = [{"id": f"t{i}", "question": f"What is {i}?", "target": str(i)} for i in range(3)]
    task = local_qa(
        tmp_path,
        train,
        [{"id": "x1", "question": "What is  1?", "target": "1"}, {"id": "x9", "question": "What is 9?", "target": "9"}],
    )
    build.build(task, {"train": 3, "validation": 1, "test": 2}, tmp_path / "out")
    checks = json.loads((tmp_path / "out/checks.json").read_text())
    assert checks["test_in_training_data"] == {"x1": "train"}
    assert checks["warnings"] == [
        "task mine: 1 of 2 test records also occur in the training data (same prompt): "
        "x1 (train); their scores measure memorisation"
    ]
    assert "WARNING: task mine: 1 of 2 test records" in capsys.readouterr().out


def test_a_record_too_long_for_max_seq_len_fails_at_the_data_stage(tiny_dir, tmp_path, monkeypatch):
    train = [
        {"id": "short", "question": "Why?", "target": "Because."},
        {"id": "long", "question": "word " * 200, "target": "x"},
    ]
    task = local_qa(tmp_path, train, train[:1])
    monkeypatch.setattr(pipeline.config, "load_task", lambda name, *where: task)
    with pytest.raises(
        ValueError,
        match=r"task mine, train split \(.*train.jsonl\): record long: \d+ tokens exceed "
        r"training.max_seq_len=64",
    ):
        pipeline.build_data(
            "mine", {"train": 2, "validation": 1, "test": 1}, tmp_path / "out", base_dir=tiny_dir, max_seq_len=64
        )


def test_the_report_shows_the_data_stage_warnings(runs):
    checks = runs / "results/data/qa/checks.json"
    io.write_json(
        checks,
        {
            "warnings": [
                "task qa: 1 of 2 test records also occur in the training data (same prompt): "
                "7 (train); their scores measure memorisation"
            ]
        },
    )
    res = regenerate(runs)
    assert res.returncode == 0, res.stderr[-3000:]
    md = (runs / "reports/report.md").read_text()
    assert "## Data warnings\n\ntask qa: 1 of 2 test records also occur in the training data" in md
