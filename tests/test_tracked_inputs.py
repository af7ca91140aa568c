"""Every input a result depends on is one the DAG sees: flip each profile key of config/schema.yaml after a real run
and a real dry run reschedules what its `x-reaches` / `x-selects` declare, and nothing outside what follows them.

One small real run (the smoke model, task qa, LoRA, the learning-rate search, the two cost rules that read the
profile; the base model from a local folder), then one `snakemake -n` per flip. The schema says which rules a key
reaches (peftbench/runspec.py makes it true: each job gets what it reads as `params: run=`); a key the schema
gains without a flip here fails `test_every_schema_key_is_flipped`."""

import copy
import os
import re
import shutil

import pytest
import yaml
from conftest import TINY, copy_project, snakemake
from safetensors.torch import load_file, save_file

from peftbench import config
from peftbench.model import base_model
from peftbench.paths import ROOT

pytestmark = pytest.mark.slow
SCHEMA = yaml.safe_load((ROOT / "config/schema.yaml").read_text())
BASE = {  # laid over config/smoke.yaml: the smallest run that has every rule a profile key can reach
    "tasks": {"summarization": None, "translation": None, "qa": {"train": 24, "validation": 4, "test": 6}},
    "methods": ["lora"],
    "tuning": {"lr_factors": [1, 3]},
    "costs": ["latency_overhead", "task_switch"],
    "forgetting": {"texts": 8},
    "threads": 1,
}

# dotted path -> the flipped value (a path into a list of mappings is not needed: the leaves below are scalars)
FLIPS = {
    "results": "results/elsewhere",
    "reports": "reports/elsewhere",
    "model.name": "tiny-other",
    "model.add_bos": True,
    "model.dtype": "bf16",  # with precision bf16 (preflight): model.dtype's own flip, below, sets both
    "model.source": None,  # a local folder: filled in by the fixture
    "model.tiny.hidden_size": 32,
    "precision": "bf16",
    "device": "cpu",
    "threads": 2,
    "warm_worker": False,
    "seeds": [0, 1],
    "method_seeds": {"lora": [0, 1]},
    "methods": ["lora", "ia3"],
    "tasks.qa.test": 5,
    "train_union": {"name": "qa_sum", "tasks": ["qa", "summarization"]},
    "training.steps": 4,
    "training.max_seq_len": 320,
    "method_training": {"lora": {"learning_rate": 0.002}},
    "method_hyperparameters": {"lora": {"r": 4}},
    "method_variants": {"lora-r2": {"from": "lora", "hyperparameters": {"r": 2}}},
    "resources": {"default": {"mem_mb": 1000}},
    "evaluation.batch_size": 3,
    "latency.repeats": 2,
    "forgetting.texts": 16,
    "tuning.lr_factors": [1, 9],
    "costs": ["latency_overhead", "task_switch", "paper_scale"],
    "latency_overhead.repeats": 3,
    "task_switch.repeats": 3,
    "tracking.mlflow": "sqlite:///results/tracked.db",
}
ALSO = {  # what else a flip needs to be a valid profile that still asks for the flipped thing
    "model.dtype": {"precision": "bf16"},
    "method_variants": {"methods": ["lora", "lora-r2"]},
    "train_union": {
        "tasks": {"summarization": {"train": 24, "validation": 4, "test": 6}},
        "tuning": {"lr_factors": []},
    },
}


def declared(path):
    """(reaches, selects) of the most specific schema node along `path` that declares either."""
    node, found = {"properties": SCHEMA["properties"]}, (None, None)
    for part in path.split("."):
        props = node.get("properties") or {}
        if part not in props:
            break
        node = props[part]
        if "$ref" in node:
            node = {**SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]], **node}
        if "x-reaches" in node or "x-selects" in node:
            found = (node.get("x-reaches"), node.get("x-selects"))
    return found


def rules_of_workflow():
    names = set()
    for f in [ROOT / "Snakefile", *(ROOT / "workflow/rules").glob("*.smk")]:
        for pair in re.findall(r"^(?:(?:rule|checkpoint) (\w+):|use rule \w+ as (\w+))", f.read_text(), re.M):
            names |= {n for n in pair if n}
    return names


def rulegraph(workdir, profiles):
    """{rule: rules that consume its outputs}, from `snakemake --rulegraph` (DOT)."""
    dot = snakemake(workdir, "--rulegraph", configfiles=profiles)
    label = dict(re.findall(r"^\s*(\d+)\[label = \"(\w+)\"", dot, re.M))
    edges = {}
    for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M):
        edges.setdefault(label[a], set()).add(label[b])
    return set(label.values()), edges


def downstream(rules, edges):
    seen, todo = set(rules), list(rules)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def scheduled(output):
    if "Nothing to be done" in output:
        return set()
    table = output.split("Job stats:")[1].split("total")[0]
    return set(re.findall(r"^(\w+)\s+\d+\s*$", table, re.M)) - {"all"}


def set_path(cfg, path, value):
    *parents, leaf = path.split(".")
    for p in parents:
        cfg = cfg.setdefault(p, {})
    cfg[leaf] = value


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The real run every flip is set against, and its profile as one file (config/tracked.yaml)."""
    d = copy_project(tmp_path_factory.mktemp("tracked"))
    local = base_model.build("tiny-random", d / "local-model", TINY)  # model.source: a local Hugging Face folder
    smoke = yaml.safe_load((ROOT / "config/smoke.yaml").read_text())
    profile = {**smoke, **BASE, "model": {"name": "tiny-local", "source": str(local)}}
    (d / "config/tracked.yaml").write_text(yaml.safe_dump(profile))
    snakemake(d, configfiles=("config/tracked.yaml",))
    assert "Nothing to be done" in snakemake(d, "-n", configfiles=("config/tracked.yaml",))
    nodes, edges = rulegraph(d, ("config/tracked.yaml",))
    return d, profile, nodes, edges


def test_every_schema_key_is_flipped():
    assert set(SCHEMA["properties"]) <= {p.split(".")[0] for p in FLIPS}


def test_every_declared_rule_exists():
    rules = rules_of_workflow()
    for key in FLIPS:
        reaches, selects = declared(key)
        assert reaches is not None or selects is not None, f"config/schema.yaml: {key} declares no x-reaches/x-selects"
        named = (set(reaches) if isinstance(reaches, list) else set()) | set(selects or ())
        assert named <= rules, f"config/schema.yaml: {key}: no such rule {sorted(named - rules)}"


@pytest.mark.parametrize("path", sorted(FLIPS))
def test_a_flipped_key_reschedules_what_it_reaches_and_nothing_else(run, path):
    d, profile, nodes, edges = run
    flipped = copy.deepcopy(profile)
    value = FLIPS[path] if path != "model.source" else str(d / "local-model-copy")
    if path == "model.source":
        shutil.copytree(d / "local-model", d / "local-model-copy", dirs_exist_ok=True)
    set_path(flipped, path, value)
    for k, v in ALSO.get(path, {}).items():
        flipped[k] = {**flipped[k], **v} if isinstance(v, dict) else v
    (d / "config/flipped.yaml").write_text(yaml.safe_dump(flipped))
    config.load_profile(
        d / "config/config.yaml", d / "config/flipped.yaml"
    )  # a valid profile (or the flip is wrong, not the DAG)
    out = snakemake(d, "-n", configfiles=("config/flipped.yaml",))
    got = scheduled(out)
    reaches, selects = declared(path)
    for also in ALSO.get(path, {}):  # what the flip needs besides reaches what that key reaches
        more = declared(also)
        reaches = set(reaches or ()) | set(more[0] or ()) if reaches != "every" else reaches
        selects = set(selects or ()) | set(more[1] or ())
    if not set(got) <= nodes:  # a flip that brings rules of its own (paper_scale, a union): their graph
        nodes, edges = rulegraph(d, ("config/flipped.yaml",))
    if reaches == "every":
        assert got == nodes - {"all"}, out[-3000:]
        return
    reaches, selects = set(reaches or ()), set(selects or ())
    if not reaches and not selects:
        assert got == set(), f"{path} is declared no rerun trigger, yet it reschedules {sorted(got)}"
        return
    assert reaches & nodes <= got, f"{path}: declared readers not rescheduled: {sorted(reaches & nodes - got)}"
    assert not selects or got & selects, f"{path}: none of its runs' rules {sorted(selects)} scheduled"
    beyond = got - downstream(reaches | selects, edges)
    assert not beyond, f"{path}: rescheduled {sorted(beyond)}, which it does not reach"


def test_edited_local_weights_rebuild_the_base_model(run):
    d, *_ = run
    weights = d / "local-model/model.safetensors"
    before, stat = weights.read_bytes(), weights.stat()
    try:
        save_file({k: v * 1.5 for k, v in load_file(weights).items()}, weights)  # every tensor x1.5
        got = scheduled(snakemake(d, "-n", configfiles=("config/tracked.yaml",)))
        assert {"base_model", "finetune", "evaluate"} <= got, sorted(got)
    finally:
        weights.write_bytes(before)
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert "Nothing to be done" in snakemake(d, "-n", configfiles=("config/tracked.yaml",))


@pytest.mark.parametrize(
    "deleted, rebuilt",
    [
        ("tuning.json", {"select_lr", "evaluate_tuned"}),
        ("tuned/lm_eval.json", {"evaluate_tuned"}),
        ("forgetting.json", {"evaluate"}),
        ("tuning/lr_x3", {"finetune_candidate", "validation_loss_candidate", "select_lr", "evaluate_tuned"}),
    ],
)
def test_a_deleted_file_of_a_run_is_rebuilt(run, deleted, rebuilt):
    d, profile, *_ = run
    target = next((d / profile["results"]).glob(f"*/qa/lora/seed0/{deleted}"))
    keep = d / "kept"
    (shutil.copytree if target.is_dir() else shutil.copy2)(target, keep)
    try:
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        got = scheduled(snakemake(d, "-n", configfiles=("config/tracked.yaml",)))
        assert rebuilt <= got, sorted(got)
    finally:
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
        shutil.move(keep, target)
    assert "Nothing to be done" in snakemake(d, "-n", configfiles=("config/tracked.yaml",))
