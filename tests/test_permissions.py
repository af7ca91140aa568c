"""Results are readable as the user's umask says: every atomic write (temp file or folder + rename) ends with the
mode a plain open/mkdir would have given, not tempfile's private 0600/0700, so a group shares a results folder."""

import ast
import os
import shutil
import stat

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from peftbench import config, io
from peftbench.paths import ROOT
from peftbench.stages import pipeline


@pytest.fixture(params=[0o022, 0o027])
def mask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_umask_is_read_not_changed(mask):
    assert io.umask() == mask
    assert io.umask() == mask


def test_every_atomic_write_gets_the_umask_mode(mask, tmp_path):
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    io.write_text(tmp_path / "a/report.html", "<html></html>")
    io.write_json(tmp_path / "a/train.json", {"x": 1})
    io.write_jsonl(tmp_path / "a/samples.jsonl", [{"id": 1}])
    with io.atomic_path(tmp_path / "a/summary.csv") as tmp:  # a writer that opens the temp file itself
        pd.DataFrame({"x": [1]}).to_csv(tmp, index=False)
    (tmp_path / "src.bin").write_bytes(b"x")
    with io.atomic_path(tmp_path / "a/copied.bin") as tmp:  # copyfile keeps the existing temp file's mode
        shutil.copyfile(tmp_path / "src.bin", tmp)
    with io.atomic_path(tmp_path / "a/task_state.safetensors") as tmp:  # safetensors writes 0600 itself
        save_file({"w": torch.zeros(2)}, str(tmp))
    with io.atomic_dir(tmp_path / "a/adapter") as tmp:  # save_pretrained, checkpoints: files made inside
        (tmp / "adapter_config.json").write_text("{}")
        io.write_json(tmp / "nested.json", {})
        save_file({"w": torch.zeros(2)}, str(tmp / "adapter_model.safetensors"))
        (tmp / "sub").mkdir(mode=0o700)
        (tmp / "sub/run.sh").write_text("#!/bin/sh\n")
        os.chmod(tmp / "sub/run.sh", 0o700)
    for name in ("report.html", "train.json", "samples.jsonl", "summary.csv", "copied.bin", "task_state.safetensors"):
        assert mode(tmp_path / "a" / name) == file_mode, name
    for name in ("adapter_config.json", "nested.json", "adapter_model.safetensors"):
        assert mode(tmp_path / "a/adapter" / name) == file_mode, name
    assert mode(tmp_path / "a/adapter") == mode(tmp_path / "a/adapter/sub") == dir_mode
    assert mode(tmp_path / "a/adapter/sub/run.sh") == dir_mode  # an executable stays executable


def test_a_run_folder_is_readable_by_the_group(tiny_dir, tmp_path):
    """A peft run as the DAG writes it (train.json, task state, adapter/, lm_eval.json, samples, latency): under umask
    0022 every file is 0644 and every folder 0755."""
    old = os.umask(0o022)
    try:
        base = tmp_path / "tiny/base_model"
        shutil.copytree(tiny_dir, base)
        pipeline.build_data("qa", {"train": 4, "validation": 2, "test": 2}, tmp_path / "data/qa")
        cfg = config.load_profile(config.CONFIG / "config.yaml", config.CONFIG / "smoke.yaml")
        cfg["training"] = {**cfg["training"], "steps": 1, "checkpoint_every": 1}  # a checkpoint folder, too
        cfg["evaluation"] = {**cfg["evaluation"], "batch_size": 2}
        cfg["latency"] = {**cfg["latency"], "prompts": 1, "new_tokens": 2, "repeats": 1}
        spec = config.discover_methods()["lora"]
        run = tmp_path / "tiny/qa/lora/seed0"
        pipeline.finetune(
            cfg, str(base), "qa", spec, 0, tmp_path / "data/qa", run / "task_state.safetensors", run / "train.json"
        )
        pipeline.evaluate_job(
            cfg,
            str(base),
            "qa",
            spec,
            run / "task_state.safetensors",
            tmp_path / "data/qa/test.jsonl",
            run / "lm_eval.json",
            run / "samples.jsonl",
            run / "latency.json",
        )
    finally:
        os.umask(old)
    assert (run / "adapter/adapter_config.json").is_file() and (run / "lm_eval.json").is_file()
    private = [
        f"{p.relative_to(tmp_path)} {oct(mode(p))}"
        for p in [tmp_path / "data", *(tmp_path / "data").rglob("*"), *(tmp_path / "tiny/qa").rglob("*")]
        if mode(p) != (0o755 if p.is_dir() else 0o644)
    ]
    assert not private


def test_no_temporary_file_outside_peftbench_io():
    """The class, not the instances: a result written through tempfile anywhere else would be private again.
    The warm worker's socket folder is meant to be private (0700) and never holds a result."""
    allowed = {"peftbench/io.py", "peftbench/warm_worker.py"}
    calls = {"mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryDirectory", "TemporaryFile", "SpooledTemporaryFile"}
    found = []
    for path in [*ROOT.glob("peftbench/**/*.py"), *ROOT.glob("workflow/scripts/*.py"), *ROOT.glob("methods/*/*.py")]:
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in calls and rel not in allowed:
                found.append(f"{rel}:{node.lineno} {node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "tempfile" and rel not in allowed:
                found.append(f"{rel}:{node.lineno} from tempfile import")
    assert not found, "write results through peftbench.io.atomic_path/atomic_dir: " + ", ".join(found)
