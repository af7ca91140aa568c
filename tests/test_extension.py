"""The extension path (add a method, add a task) works the first time or fails at DAG build with the fix:
a copied task folder is scored under its own name, local data files are inputs of the data rule, misspelled
hyperparameters are refused against method.yaml's `accepts:`, and a merged peft method without `switch`
is still measured by the task-switch cost rule (rebuilt from the base), never sinking the run."""

import json
import shutil

import pytest
import torch
import yaml
from conftest import copy_project, snakemake

from peftbench import config, hyperparameters, identity, io, methods, preflight
from peftbench.config import ConfigError
from peftbench.costs import task_switch
from peftbench.data import build
from peftbench.model import base_model
from peftbench.paths import ROOT
from peftbench.report import aggregate
from peftbench.stages import evaluate


# ---- a copied task folder ------------------------------------------------------------------------
def copy_task(root, src, name):
    """`cp -r tasks/<src> tasks/<name>` and the one edit the README asks for (task.yaml's name)."""
    shutil.copytree(ROOT / "tasks" / src, root / name)
    for shared in (ROOT / "tasks").glob("lm_eval_*.yaml"):  # what its lm_eval.yaml includes, beside it
        shutil.copy(shared, root)
    spec = yaml.safe_load((root / name / "task.yaml").read_text())
    spec["name"] = name
    (root / name / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return config.load_task(name, root)


def test_a_copied_task_folder_is_scored_under_its_own_name(tiny, tmp_path):
    task = copy_task(tmp_path / "tasks", "qa", "qa-copy")  # its lm_eval.yaml still says peftbench_qa
    build.build(task, {"train": 2, "validation": 1, "test": 2}, tmp_path / "data")
    model, tok = tiny
    results, samples = evaluate.run(model, tok, task["dir"], tmp_path / "data/test.jsonl", batch_size=2)
    assert set(evaluate.scores(results, "qa-copy")) == {"exact_match", "f1"}
    assert len(samples[evaluate.task_name("qa-copy")]) == 2


# ---- local data files are inputs of the data rule --------------------------------------------------
def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def local_qa(root, n=6):
    """tasks/qa copied to tasks/qa-local, reading the user's own JSONL (several references per record)."""
    copy_task(root / "tasks", "qa", "qa-local")
    rows = [
        {
            "id": i,
            "context": f"Ada Lovelace wrote note {i}.",
            "question": f"Who wrote note {i}?",
            "target": "Ada Lovelace",
            "answers": ["Ada Lovelace", "Lovelace"],
        }
        for i in range(n)
    ]
    for split in ("train", "validation", "test"):
        write_jsonl(root / "tasks/qa-local/data" / f"{split}.jsonl", rows)
    spec = yaml.safe_load((root / "tasks/qa-local/task.yaml").read_text())
    spec["source"] = {"type": "jsonl", "files": {s: f"data/{s}.jsonl" for s in ("train", "validation", "test")}}
    (root / "tasks/qa-local/task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return config.load_task("qa-local", root / "tasks")


def test_data_inputs_are_the_task_yaml_and_every_local_file_it_reads(tmp_path):
    task = local_qa(tmp_path)
    d = tmp_path / "tasks/qa-local"
    assert build.inputs(task, {}) == [
        d / "task.yaml",
        d / "data/train.jsonl",
        d / "data/validation.jsonl",
        d / "data/test.jsonl",
    ]
    override = {
        "source": {
            "type": "jsonl",
            "files": {"train": "mine.jsonl", "validation": "mine.jsonl", "test": "held_out.jsonl"},
        }
    }
    assert [p.name for p in build.inputs(task, override)] == ["task.yaml", "mine.jsonl", "held_out.jsonl"]
    write_jsonl(tmp_path / "hub_copy/test.jsonl", [{}])
    hub = {"source": {"type": "hf", "path": str(tmp_path / "hub_copy"), "columns": {}}}
    assert build.inputs(task, hub)[1:] == [tmp_path / "hub_copy/test.jsonl"]


def dry_run(workdir, *targets):
    return snakemake(workdir, *targets, configfiles=("config/smoke.yaml", "config/local.yaml"))


def test_an_edited_record_reschedules_the_data_and_every_run(tmp_path):
    copy_project(tmp_path)
    local_qa(tmp_path)
    (tmp_path / "config/local.yaml").write_text(
        yaml.safe_dump(
            {
                "methods": ["zero-shot"],
                "costs": [],
                "tasks": {
                    "summarization": None,
                    "translation": None,
                    "qa": None,
                    "qa-local": {"train": 4, "validation": 1, "test": 2},
                },
            }
        )
    )
    data = [f"results/smoke/data/qa-local/{s}.jsonl" for s in ("train", "validation", "test")]
    dry_run(tmp_path, *data)  # build the data (a real job; nothing upstream)
    assert "Nothing to be done" in dry_run(tmp_path, "-n", *data)
    test = tmp_path / "tasks/qa-local/data/test.jsonl"
    rows = [json.loads(line) for line in test.read_text().splitlines()]
    rows[0]["answers"] = ["Augusta Ada King"]
    write_jsonl(test, rows)
    out = dry_run(tmp_path, "-n")
    assert "checkpoint data:" in out and "reason: Updated input files: tasks/qa-local/data/test.jsonl" in out.replace(
        str(tmp_path) + "/", ""
    ), out[-3000:]
    for rule in ("finetune", "evaluate", "summary", "report"):  # a dry run lists them; the run skips what reads an
        assert f"rule {rule}:" in out  # unchanged split (tests/test_workflow.py: the data stage is a checkpoint)


# ---- hyperparameters a method accepts -----------------------------------------------------------------
@pytest.fixture
def project_methods():  # conftest's `project`, with houlsby's hyperparameters checked too
    return ["lora", "houlsby", "zero-shot"]


def edit_yaml(path, **changes):
    spec = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = spec
        for p in parents:
            node = node[p]
        node[key] = value
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def test_every_shipped_method_declares_what_its_method_py_reads():
    for yml in sorted((ROOT / "methods").glob("*/method.yaml")):
        accepts = yaml.safe_load(yml.read_text())["accepts"]
        assert hyperparameters.reads(yml.parent / "method.py") <= set(accepts), yml
    assert hyperparameters.reads(ROOT / "methods/lora/method.py") == {
        "r",
        "alpha",
        "dropout",
        "target_modules",
        "merge",
        "fused_qkv",
    }


def test_a_misspelled_key_in_method_yaml_is_named_with_the_fix(project):
    root, cfg = project
    yml = root / "methods/lora/method.yaml"
    edit_yaml(yml, hyperparameters__target_module=["q_proj"])
    with pytest.raises(ConfigError) as e:
        preflight.workflow(cfg, root)
    assert str(e.value).startswith(f"{yml}: field 'hyperparameters.target_module': lora's method.py does not read")
    assert "did you mean 'target_modules'?" in str(e.value)


def test_a_misspelled_key_in_a_profile_is_named_with_the_fix(project):
    root, cfg = project
    cfg["method_hyperparameters"] = {"houlsby": {"sise": 8}}
    with pytest.raises(ConfigError, match=r"config.*field 'method_hyperparameters.houlsby.sise'.*did you mean 'size'"):
        preflight.workflow(cfg, root)
    cfg["method_hyperparameters"] = {}
    cfg["method_variants"] = {"adapter-l": {"from": "houlsby", "hyperparameters": {"placment": "mlp_only"}}}
    cfg["methods"] = ["adapter-l"]
    with pytest.raises(ConfigError, match=r"field 'method_variants.adapter-l.hyperparameters.placment'.*'placement'"):
        preflight.workflow(cfg, root)


def test_a_value_of_the_wrong_type_is_refused(project):
    root, cfg = project
    edit_yaml(root / "methods/lora/method.yaml", hyperparameters__r="8")
    with pytest.raises(ConfigError, match=r"field 'hyperparameters.r': '8' is not of type 'integer'.*accepts.r"):
        preflight.workflow(cfg, root)
    edit_yaml(root / "methods/lora/method.yaml", hyperparameters__r=8)
    cfg["method_hyperparameters"] = {"houlsby": {"target_modules": {"attention": "o_proj", "mlp": 3}}}
    with pytest.raises(ConfigError, match=r"field 'method_hyperparameters.houlsby.target_modules.mlp': 3 is not"):
        preflight.workflow(cfg, root)


def test_a_key_method_py_reads_must_be_declared(project):
    root, cfg = project
    py = root / "methods/lora/method.py"
    py.write_text(py.read_text().replace('hp.get("dropout", 0.0)', 'hp.get("lora_dropout", 0.0)'))
    with pytest.raises(ConfigError, match=r"method.yaml: field 'accepts': .*reads hyperparameter\(s\) lora_dropout"):
        preflight.workflow(cfg, root)


def test_every_methods_accepts_errors_come_at_once_with_a_schema_that_fits(project):
    """Issue 27: a new user's three copied methods failed one method file at a time, and the hint offered
    `{type: integer}` for a boolean."""
    root, cfg = project
    py = root / "methods/lora/method.py"
    py.write_text(py.read_text().replace('hp.get("dropout", 0.0)', 'hp.get("use_dora", False)'))
    edit_yaml(root / "methods/lora/method.yaml", hyperparameters__use_dora=True)
    py = root / "methods/houlsby/method.py"
    py.write_text(py.read_text().replace('hp.get("placement", "houlsby")', 'hp.get("position", "houlsby")'))
    with pytest.raises(ConfigError) as err:
        preflight.workflow(cfg, root)
    lines = str(err.value).splitlines()
    assert lines[0] == "2 methods:", lines
    assert any("houlsby/method.yaml" in line and "`position: {}`" in line for line in lines), lines
    assert any("lora/method.yaml" in line and "`use_dora: {type: boolean}`" in line for line in lines), lines


def test_a_copied_methods_readme_titled_for_its_parent_is_a_warning(project, capsys):
    """Issue 27's extension path: `cp -r methods/lora methods/lora_r16` kept a README describing lora."""
    import shutil

    root, cfg = project
    shutil.copytree(root / "methods/lora", root / "methods/lora_r16")
    edit_yaml(root / "methods/lora_r16/method.yaml", name="lora_r16")
    preflight.workflow({**cfg, "methods": ["lora", "lora_r16"]}, root)
    err = capsys.readouterr().err
    assert "lora_r16/README.md: titled 'lora', not this method's name 'lora_r16'" in err
    assert "methods/lora/README.md" not in err  # every shipped README is titled for its own method


def test_accepts_is_required(project):
    root, cfg = project
    yml = root / "methods/zero-shot/method.yaml"
    spec = yaml.safe_load(yml.read_text())
    del spec["accepts"]
    yml.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=r"zero-shot/method.yaml: field '\(top level\)': 'accepts' is a required"):
        preflight.workflow(cfg, root)


# ---- a merged peft method without `switch` ---------------------------------------------------------------
MERGED_IA3 = '''"""(IA)^3 through peft, merged at load, with no `switch`: the shape of a new user's peft method."""
from peft import IA3Config, get_peft_model, set_peft_model_state_dict, get_peft_model_state_dict


def attach(model, hp):
    return get_peft_model(model, IA3Config(target_modules=list(hp["target_modules"]), feedforward_modules=[],
                                           task_type="CAUSAL_LM"))


def task_state(model):
    return get_peft_model_state_dict(model)


def load(model, state, hp):
    model = attach(model, hp)
    set_peft_model_state_dict(model, state)
    return model.merge_and_unload().eval()
'''


def test_a_merged_method_without_switch_is_rebuilt_from_the_base_and_labelled(tiny_dir, tmp_path):
    folder = tmp_path / "merged"
    folder.mkdir()
    (folder / "method.py").write_text(MERGED_IA3)
    spec = {"name": "merged", "dir": str(folder), "hyperparameters": {"target_modules": ["k_proj", "v_proj"]}}
    module = methods.load_module(folder)
    paths = []
    for i in (1, 2):  # two task states: moved (IA)^3 vectors
        base, _ = base_model.load(tiny_dir)
        model = module.attach(base, spec["hyperparameters"])
        state = {k: v + 0.1 * i for k, v in module.task_state(model).items()}
        paths.append(tmp_path / f"task{i}" / "task_state.safetensors")
        paths[-1].parent.mkdir()
        methods.save_state(state, paths[-1])  # beside its train.json, as a run stores it
        io.write_json(paths[-1].parent / "train.json", {"task_state_sha256": identity.sha256_file(paths[-1])})
    loaded = module.load(base_model.load(tiny_dir)[0], methods.load_state(paths[0]), spec["hyperparameters"])
    with pytest.raises(ValueError, match="keys the loaded model lacks"):  # what sank the run before
        methods.copy_task_state(loaded, methods.load_state(paths[1]))

    specs = {"merged": spec, "broken": {**spec, "name": "broken", "hyperparameters": {"target_modules": ["nope"]}}}
    df = task_switch.run(
        tiny_dir, specs, {"merged": paths, "broken": paths}, ["a", "b"], tmp_path / "ts.csv", repeats=2, cold_repeats=1
    ).set_index("method")
    row = df.loc["merged"]
    assert row.switch_kind == "rebuild" and row.switch_ms > 0 and row.check_max_abs_logit_diff < 1e-5
    assert row.switch_note.startswith("rebuilt from the base: task state has keys the loaded model lacks")
    assert (
        df.loc["broken"].error.startswith("NoMatchingPeftModuleError: Target modules")
        and (tmp_path / "ts.csv").is_file()
    )
    # the report lists the failure, as it lists a missing run
    assert aggregate.cost_failures({"t": tmp_path / "ts.csv"}) == [f"ts.csv / broken: {df.loc['broken'].error}"]
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "latency_overhead.log").write_text("Traceback (most recent call last):\nRuntimeError: out of memory\n")
    assert aggregate.cost_failures({}, ["latency_overhead"], logs) == [
        f"latency_overhead.csv: failed: RuntimeError: out of memory (see {logs / 'latency_overhead.log'})"
    ]


def test_copy_applies_when_the_keys_and_shapes_map(method_specs, tiny_dir):
    """The default switch (a copy) for a state of the model's own tensors; lora brings its own switch."""
    assert callable(getattr(methods.load_module(method_specs["lora"]["dir"]), "switch", None))
    model = base_model.load(tiny_dir)[0]  # as full fine-tuning's load leaves it
    assert methods.copy_mismatch(model, {n: torch.zeros_like(t) for n, t in model.state_dict().items()}) is None
    assert "another shape" in methods.copy_mismatch(model, {"lm_head.weight": torch.zeros(1)})


def test_latency_overhead_measures_a_method_that_merges_without_saying_so(tiny_dir, tmp_path):
    """No `merge` hyperparameter, yet `load` merges: it gets a private copy of the base (the shared weights are
    restored), and a broken method is a row with its error, not a failed cost rule."""
    from peftbench.costs import latency_overhead

    folder = tmp_path / "merged"
    folder.mkdir()
    (folder / "method.py").write_text(MERGED_IA3)
    spec = {"name": "merged", "dir": str(folder), "hyperparameters": {"target_modules": ["k_proj", "v_proj"]}}
    specs = {"merged": spec, "broken": {**spec, "name": "broken", "hyperparameters": {"target_modules": ["nope"]}}}
    rows = {r["variant"]: r for r in latency_overhead.generation_rows(tiny_dir, specs, ["Q: why?\nA:"], 2, 2)}
    assert rows["merged"]["median_ms"] > 0 and rows["merged"]["added_params"] == 0
    assert rows["broken"]["error"].startswith("NoMatchingPeftModuleError")
