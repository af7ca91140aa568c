"""Bad input fails while the DAG is built (peftbench.preflight.workflow, exactly what
workflow/rules/common.smk runs), with one error naming the file and the field, before any job.
Each test breaks one thing in a copy of the project's methods/ and tasks/."""

import json
import re

import numpy as np
import pytest
import yaml
from safetensors.numpy import save_file

from peftbench import config, preflight
from peftbench.config import ConfigError
from peftbench.paths import ROOT


def fails(project, cfg, pattern):
    with pytest.raises(ConfigError, match=pattern):
        preflight.workflow(cfg, project)


def test_the_shipped_default_passes(project):
    root, cfg = project
    cfg, specs, methods, tasks = preflight.workflow(cfg, root)
    assert methods == ["lora", "zero-shot"] and set(tasks) == {"qa", "summarization", "translation"}


@pytest.mark.parametrize(
    "key,value", [("results", "../elsewhere"), ("results", "/tmp/results"), ("reports", "reports/../../x")]
)
def test_output_paths_stay_inside_the_project(project, key, value):
    root, cfg = project
    fails(root, {**cfg, key: value}, rf"field '{key}': '{re.escape(value)}' must be a relative path inside")


@pytest.mark.parametrize("key,value", [("results", "methods"), ("reports", "tasks/qa"), ("results", ".git/x")])
def test_output_paths_stay_out_of_the_sources(project, key, value):
    root, cfg = project
    fails(root, {**cfg, key: value}, rf"field '{key}': '{re.escape(value)}' is inside the project's sources")


def test_unknown_method_is_named(project):
    root, cfg = project
    fails(root, {**cfg, "methods": ["lora", "lroa"]}, "field 'methods': unknown method.*lroa")


def test_unknown_task_is_named(project):
    root, cfg = project
    fails(root, {**cfg, "tasks": {**cfg["tasks"], "summarisation": cfg["tasks"]["qa"]}}, "unknown task 'summarisation'")


def test_task_name_cannot_walk_out_of_tasks(project):
    root, cfg = project
    fails(root, {**cfg, "tasks": {"../qa": cfg["tasks"]["qa"]}}, r"field 'tasks': .*\.\./qa")


def test_wrong_type_names_the_field(project):
    root, cfg = project
    fails(root, {**cfg, "seeds": ["zero"]}, r"field 'seeds.0': 'zero' is not of type 'integer'")


def test_method_training_for_an_unknown_method(project):
    root, cfg = project
    fails(root, {**cfg, "method_training": {"lorra": {"steps": 2}}}, "field 'method_training': unknown method.*lorra")


def test_method_without_method_py(project):
    root, cfg = project
    (root / "methods/lora/method.py").unlink()
    fails(root, cfg, "lora: method.py is missing")


def test_method_py_without_the_contract(project):
    root, cfg = project
    path = root / "methods/lora/method.py"
    path.write_text(path.read_text().replace("def task_state(", "def state_of_task("))
    fails(root, cfg, r"lora/method.py: must define task_state")


def test_method_py_that_does_not_parse(project):
    root, cfg = project
    (root / "methods/lora/method.py").write_text("def attach(model, hp:\n")
    fails(root, cfg, r"lora/method.py:1: not valid Python")


def test_method_yaml_that_does_not_parse(project):
    root, cfg = project
    (root / "methods/lora/method.yaml").write_text("name: lora\nhyperparameters: {r: 8\n")
    fails(root, cfg, r"lora/method.yaml:3: not valid YAML \(while parsing a flow mapping; expected ',' or '}'")


def test_method_yaml_missing_a_field(project):
    root, cfg = project
    spec = yaml.safe_load((root / "methods/lora/method.yaml").read_text())
    del spec["paper"]
    (root / "methods/lora/method.yaml").write_text(yaml.safe_dump(spec))
    fails(root, cfg, r"lora/method.yaml: field '\(top level\)': 'paper' is a required property")


def test_task_prompt_using_an_undeclared_field(project):
    root, cfg = project
    path = root / "tasks/qa/task.yaml"
    path.write_text(path.read_text().replace("Passage: {context}", "Passage: {passage}"))
    fails(root, cfg, r"qa/task.yaml: field 'prompt': uses passage")


def test_task_metric_that_lm_eval_does_not_compute(project):
    root, cfg = project
    path = root / "tasks/qa/task.yaml"
    path.write_text(path.read_text().replace("metrics: [exact_match, f1]", "metrics: [exact_match, f1, meteor]"))
    fails(root, cfg, r"qa/task.yaml: field 'metrics': meteor not in lm_eval.yaml's metric_list")


@pytest.mark.parametrize(
    "line, pattern",
    [  # a helper that moved, a name it no longer defines, a package not installed
        (
            "from peftbench.e2e_metrics import Corpus",
            r"utils.py:1: imports peftbench.e2e_metrics\.Corpus: peftbench has no module peftbench.e2e_metrics \(the scoring helpers are in peftbench/scoring/: .*e2e_metrics",
        ),
        (
            "from peftbench.scoring.metrics import f1_score",
            r"utils.py:1: imports peftbench.scoring.metrics.f1_score: peftbench/scoring/metrics.py defines no 'f1_score'",
        ),
        (
            "import rouge_scorer_typo",
            r"utils.py:1: imports rouge_scorer_typo: no module 'rouge_scorer_typo' is installed",
        ),
    ],
)
def test_a_task_scorer_that_cannot_import_is_named_at_dag_build(project, line, pattern):
    """Issue 27's extension path: a utils.py importing a moved module failed 81 s into the run, after training."""
    root, cfg = project
    path = root / "tasks/qa/utils.py"
    path.write_text(line + "\n" + path.read_text())
    fails(root, cfg, pattern)


def test_a_function_tag_naming_no_function_is_named(project):
    root, cfg = project
    path = root / "tasks/qa/lm_eval.yaml"
    path.write_text(path.read_text().replace("utils.process_results", "utils.process_result"))
    fails(root, cfg, r"qa/lm_eval.yaml: !function utils.process_result: .*qa/utils.py defines no 'process_result'")


def test_task_without_lm_eval_yaml(project):
    root, cfg = project
    (root / "tasks/qa/lm_eval.yaml").unlink()
    fails(root, cfg, r"qa/lm_eval.yaml: missing")


def test_task_whose_shared_lm_eval_yaml_is_missing(project):
    """tasks/<name>/lm_eval.yaml `include:`s the shared tasks/lm_eval_generate.yaml: without it, the DAG is
    refused at build, naming the including file and the field (not a KeyError in lm-eval minutes later)."""
    root, cfg = project
    (root / "tasks/lm_eval_generate.yaml").unlink()
    fails(root, cfg, r"tasks/\w+/lm_eval.yaml: field 'include': no .*lm_eval_generate.yaml")


@pytest.mark.parametrize(
    "include, problem",
    [
        ("lm_eval.yaml", r"lm_eval.yaml includes itself"),  # a 992-line RecursionError before
        ("[../lm_eval_generate.yaml, 3]", r"\['../lm_eval_generate.yaml', 3\] is not a file name"),  # a TypeError
    ],
)
def test_a_bad_include_is_named(project, include, problem):
    root, cfg = project
    yml = root / "tasks/qa/lm_eval.yaml"
    yml.write_text(yml.read_text().replace("include: ../lm_eval_generate.yaml", f"include: {include}"))
    fails(root, cfg, rf"tasks/qa/lm_eval.yaml: field 'include': .*{problem}")


def test_every_task_scores_its_metrics_through_the_shared_yaml():
    """Each task's lm_eval.yaml, as lm-eval loads it (includes merged), scores what task.yaml lists, and the
    evaluate rule's inputs (config.lm_eval_files) name every file that loading read."""
    from lm_eval.tasks._yaml_loader import load_yaml

    for task_yaml in sorted((ROOT / "tasks").glob("*/task.yaml")):
        task = config.load_task(task_yaml.parent.name)
        loaded = load_yaml(task_yaml.parent / "lm_eval.yaml", resolve_func=False)
        assert set(task["metrics"]) <= {m["metric"] for m in loaded["metric_list"]}, task_yaml
        assert loaded["output_type"] == "generate_until" and loaded["test_split"] == "test"
        files = {p.name for p in config.lm_eval_files(task_yaml.parent)}
        assert {"lm_eval.yaml", "lm_eval_generate.yaml"} <= files, task_yaml
        assert any(name.endswith(".py") for name in files), task_yaml  # its scorer: utils.py, or a shared one


def local_task(root, records, sizes=None):
    """Turn tasks/qa into the user's own JSON-lines dataset."""
    data = root / "tasks/qa/data"
    data.mkdir()
    for split in ("train", "validation", "test"):
        (data / f"{split}.jsonl").write_text(
            records if isinstance(records, str) else "".join(json.dumps(r) + "\n" for r in records)
        )
    path = root / "tasks/qa/task.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["source"] = {"type": "jsonl", "files": {s: f"data/{s}.jsonl" for s in ("train", "validation", "test")}}
    path.write_text(yaml.safe_dump(spec))
    return {"qa": sizes or {"train": 2, "validation": 1, "test": 1}}


GOOD = [
    {"id": str(i), "context": f"Paris is in France {i}.", "question": "Paris is in ___.", "target": "France"}
    for i in range(3)
]


def test_local_dataset_that_is_fine(project):
    root, cfg = project
    training = {**cfg["training"], "batch_size": 2}  # no larger than the 2 train records it asks for
    _, _, _, tasks = preflight.workflow({**cfg, "tasks": local_task(root, GOOD), "training": training}, root)
    assert tasks["qa"]["source"]["type"] == "jsonl"


def test_local_dataset_file_missing(project):
    root, cfg = project
    tasks = local_task(root, GOOD)
    (root / "tasks/qa/data/validation.jsonl").unlink()
    fails(root, {**cfg, "tasks": tasks}, r"qa/task.yaml: field 'source.files.validation': .*validation.jsonl not found")


def test_local_dataset_with_a_bad_json_line(project):
    root, cfg = project
    text = json.dumps(GOOD[0]) + "\n" + '{"id": "1", "context": "x",\n'
    fails(root, {**cfg, "tasks": local_task(root, text)}, r"data/train.jsonl:2: not valid JSON")


def test_local_dataset_record_missing_a_field(project):
    root, cfg = project
    records = GOOD[:1] + [{k: v for k, v in GOOD[1].items() if k != "question"}]
    fails(root, {**cfg, "tasks": local_task(root, records)}, r"data/train.jsonl:2: missing field\(s\) question")


def test_local_dataset_that_is_empty(project):
    root, cfg = project
    fails(root, {**cfg, "tasks": local_task(root, "\n")}, r"data/train.jsonl: no records")


def test_local_dataset_smaller_than_asked(project):
    root, cfg = project
    tasks = local_task(root, GOOD, {"train": 10, "validation": 1, "test": 1})
    fails(root, {**cfg, "tasks": tasks}, r"data/train.jsonl: 3 records, but field 'tasks.qa.train' asks for 10")


def local_model(root, weights="model.safetensors", positions=128):
    model = root / "my-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "max_position_embeddings": positions}))
    if weights.endswith(".safetensors"):
        save_file({"model.embed_tokens.weight": np.zeros((4, 2), dtype=np.float32)}, str(model / weights))
    else:
        (model / weights).write_bytes(b"\0")
    return {"name": "my-model", "source": str(model)}


def test_a_model_that_needs_its_own_code_is_refused_at_dag_build(project):
    """Issue 27: a config with `auto_map` failed in the base_model job with transformers' traceback."""
    root, cfg = project
    model = local_model(root)
    config_json = root / "my-model/config.json"
    config_json.write_text(
        json.dumps(
            {**json.loads(config_json.read_text()), "auto_map": {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}}
        )
    )
    fails(root, {**cfg, "model": model}, r"my-model/config.json: field 'auto_map': .*only with trust_remote_code")


def test_model_folder_that_does_not_exist(project):
    root, cfg = project
    fails(
        root,
        {**cfg, "model": {"name": "m", "source": "./no/such/model"}},
        r"field 'model.source': no/such/model is not a model folder",
    )


def test_model_with_pickled_weights_only_is_refused(project):
    root, cfg = project
    fails(
        root,
        {**cfg, "model": local_model(root, "pytorch_model.bin")},
        r"field 'model.source': .*my-model has no model.safetensors .*found: pytorch_model.bin; pickled .bin/.pt "
        r"checkpoints are refused",
    )


def test_sequences_longer_than_the_model_allows(project):
    root, cfg = project
    fails(
        root,
        {**cfg, "model": local_model(root, positions=128)},
        r"field 'training.max_seq_len': 384 exceeds the model's max_position_embeddings=128",
    )


# ---- issue 17: no silent wrong row --------------------------------------------------------------
@pytest.mark.parametrize(
    "key,value,pattern",
    [
        ("seeds", [0, 0], r"field 'seeds': seed 0 is listed twice \(each seed is one run"),
        ("methods", ["lora", "zero-shot", "lora"], r"field 'methods': method 'lora' is listed twice"),
    ],
)
def test_duplicates_are_errors(project, key, value, pattern):
    root, cfg = project
    fails(root, {**cfg, key: value}, pattern)


def test_profile_jsonl_source_without_files(project):
    root, cfg = project
    tasks = {**cfg["tasks"], "qa": {**cfg["tasks"]["qa"], "source": {"type": "jsonl"}}}
    fails(root, {**cfg, "tasks": tasks}, r"field 'tasks.qa.source': 'files' is a required property")


def test_profile_source_of_an_unknown_type(project):
    root, cfg = project
    tasks = {**cfg["tasks"], "qa": {**cfg["tasks"]["qa"], "source": {"type": "csv", "files": {}}}}
    fails(
        root, {**cfg, "tasks": tasks}, r"field 'tasks.qa.source.type': 'csv' is not one of \['builtin', 'hf', 'jsonl'\]"
    )


def test_unknown_builtin_builder(project):
    root, cfg = project
    path = root / "tasks/qa/task.yaml"
    path.write_text(path.read_text().replace("builder: wiki_cloze_qa", "builder: wiki_cloze"))
    fails(root, cfg, r"qa/task.yaml: field 'source.builder': unknown builtin 'wiki_cloze' \(known: wiki_summarization")


def test_local_dataset_line_that_is_not_an_object(project):
    root, cfg = project
    text = json.dumps(GOOD[0]) + "\n" + json.dumps("just a string") + "\n"
    fails(
        root, {**cfg, "tasks": local_task(root, text)}, r"data/train.jsonl:2: expected a JSON object .*got a JSON str"
    )


@pytest.mark.parametrize(
    "field,value,kind",
    [("target", 123, "int 123"), ("question", None, "null"), ("context", {"a": "b"}, r"dict \{'a': 'b'\}")],
)
def test_local_dataset_field_that_is_not_a_string(project, field, value, kind):
    root, cfg = project
    records = GOOD[:1] + [{**GOOD[1], field: value}]
    fails(
        root,
        {**cfg, "tasks": local_task(root, records)},
        rf"data/train.jsonl:2: record 1: field '{field}' is {kind}, expected a string",
    )


def test_lm_eval_yaml_that_does_not_parse(project):
    root, cfg = project
    path = root / "tasks/qa/lm_eval.yaml"
    path.write_text(path.read_text().replace("task: peftbench_qa", "task: [peftbench_qa"))
    fails(root, cfg, r"qa/lm_eval.yaml:\d+: not valid YAML")


def test_mistyped_hub_id(project, monkeypatch, capsys):
    """Malformed: an error. Well formed but not cached while offline: a warning (offline dry runs of the
    papers' profiles stay possible); online, an id the hub does not know is an error."""
    root, cfg = project
    fails(root, {**cfg, "model": {"name": "m", "source": "not a//hub id"}}, r"'not a//hub id' is not .* a valid hub id")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    preflight.workflow({**cfg, "model": {"name": "m", "source": "HuggingFaceTB/SmolLM2-135M-Instrcut"}}, root)
    assert (
        "'HuggingFaceTB/SmolLM2-135M-Instrcut' is not in the Hugging Face cache and HF_HUB_OFFLINE=1"
        in capsys.readouterr().err
    )


def test_junk_safetensors_file_is_refused(project):
    root, cfg = project
    model = local_model(root)
    (root / "my-model/model.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{not json at all")
    fails(root, {**cfg, "model": model}, r"my-model/model.safetensors: not a valid safetensors file")


def test_pickle_beside_a_decoy_safetensors_is_refused(project):
    """The decoy passed the old `*.safetensors` glob; transformers would then have loaded the pickle."""
    root, cfg = project
    model = local_model(root, "pytorch_model.bin")
    (root / "my-model/decoy.safetensors").write_bytes(b"junk")
    fails(root, {**cfg, "model": model}, r"has no model.safetensors .*found: decoy.safetensors, pytorch_model.bin")


def test_one_include_walker_reads_what_lm_eval_reads(tmp_path):
    """config.lm_eval_config serves the rule inputs, preflight and the statistics alike: a list of includes,
    each with its own include and `!function`, merges as lm-eval's own loader merges it."""
    from lm_eval.tasks._yaml_loader import load_yaml

    from peftbench.stats import scores

    task = tmp_path / "tasks/mine"
    task.mkdir(parents=True)
    (tmp_path / "tasks/base.yaml").write_text("output_type: generate_until\ntest_split: test\nfewshot: 1\n")
    (tmp_path / "tasks/metrics.yaml").write_text(
        "include: base.yaml\nfewshot: 2\nprocess_results: !function mine/utils.shared\n"
    )
    (tmp_path / "tasks/other.yaml").write_text("test_split: other\nextra: 1\n")
    (task / "utils.py").write_text("def shared(d, r):\n    return {'a': 1}\n\ndef own(d, r):\n    return {'b': 2}\n")
    (task / "lm_eval.yaml").write_text(
        "include: [../metrics.yaml, ../other.yaml]\ntask: mine\nmetric_list: [{metric: a, aggregation: mean}]\n"
    )
    theirs = load_yaml(task / "lm_eval.yaml", resolve_func=False)
    ours = config.lm_eval_yaml(task / "lm_eval.yaml")
    assert {k: v for k, v in ours.items() if k != "process_results"} == {
        k: v for k, v in theirs.items() if k != "process_results"
    }
    assert ours["test_split"] == "other" and ours["fewshot"] == 2  # later includes win, the file over all
    assert scores._read_task_yaml(task / "lm_eval.yaml")["process_results"].function.__name__ == "shared"
    assert [p.name for p in config.lm_eval_files(task)] == [
        "utils.py",
        "lm_eval.yaml",
        "metrics.yaml",
        "base.yaml",
        "other.yaml",
    ]


# ---- issue 27: a false perfect score, a batch no split can fill ----------------------------------------------


@pytest.mark.parametrize(
    "change,field,what",
    [
        ({"target": ""}, "target", "empty"),
        ({"target": "  \t"}, "target", "whitespace only"),
        ({"target": "::::"}, "target", "'::::', no letter or digit"),
        ({"answers": ["France", " "]}, r"answers\[1\]", "whitespace only"),
    ],
)
def test_an_empty_target_is_refused_with_its_file_and_line(project, change, field, what):
    """A gold answer that says nothing is matched by an output that says nothing ("::::" scored exact_match
    100.00 on empty targets): refused while the DAG is built, naming file, line, record and field."""
    root, cfg = project
    records = [*GOOD[:1], {**GOOD[1], **change}, GOOD[2]]
    text = json.dumps(records[0]) + "\n\n" + "".join(json.dumps(r) + "\n" for r in records[1:])  # line 3
    fails(
        root,
        {**cfg, "tasks": local_task(root, text)},
        rf"data/train.jsonl:3: record 1: field '{field}' is {what}: an empty or punctuation-only answer",
    )


def test_an_empty_target_from_any_source_is_refused_at_the_data_stage():
    """Hub and builtin records enter through the data stage's render: the same check, naming task and split."""
    from peftbench.data import build

    task = {"name": "qa", "fields": ["question"], "prompt": "{question}"}
    assert build.render({"id": 1, "question": "Where?", "target": "Paris"}, task, "test")["prompt"] == "Where?"
    with pytest.raises(ValueError, match=r"task qa, test split: record 7: field 'target' is empty"):
        build.render({"id": 7, "question": "Where?", "target": ""}, task, "test")


@pytest.mark.parametrize(
    "where,pattern",
    [
        (
            "profile",
            r"field 'training.batch_size': 1000000000000 records per batch for method 'lora', but the "
            r"train split of qa holds 2 \(tasks.qa.train\)",
        ),
        ("method_training", r"field 'method_training.lora.batch_size': 3 records per batch"),
        ("method.yaml", r"lora/method.yaml: field 'training.batch_size': 3 records per batch"),
    ],
)
def test_a_batch_larger_than_the_train_split_is_refused(project, where, pattern):
    """batch_size 1e12 was accepted and the job grew past 7 GB: a batch holds records of one split."""
    root, cfg = project
    tasks = {t: {**s, "train": 2 if t == "qa" else s["train"]} for t, s in cfg["tasks"].items()}
    cfg = {**cfg, "tasks": tasks}
    if where == "profile":
        cfg["training"] = {**cfg.get("training", {}), "batch_size": 1_000_000_000_000}
    elif where == "method_training":
        cfg["method_training"] = {"lora": {"batch_size": 3}}
    else:
        path = root / "methods/lora/method.yaml"
        spec = yaml.safe_load(path.read_text())
        spec["training"] = {**spec.get("training", {}), "batch_size": 3}
        path.write_text(yaml.safe_dump(spec))
    fails(root, cfg, pattern)


def test_a_batch_as_large_as_the_split_passes(project):
    root, cfg = project
    tasks = {t: {**s, "train": 8} for t, s in cfg["tasks"].items()} | {"translation": None}  # null: dropped
    preflight.workflow({**cfg, "tasks": tasks, "training": {**cfg.get("training", {}), "batch_size": 8}}, root)


def test_a_dataset_that_is_not_utf8_is_named_with_its_line(project):
    root, cfg = project
    tasks = local_task(root, GOOD)
    path = root / "tasks/qa/data/train.jsonl"
    path.write_bytes(
        path.read_bytes() + json.dumps({**GOOD[0], "id": "9", "target": "café"}, ensure_ascii=False).encode("latin-1")
    )
    fails(root, {**cfg, "tasks": tasks}, r"data/train.jsonl:4: not UTF-8 \(byte b'\\xe9' at column \d+\); JSON lines")


def test_a_repeated_record_id_is_refused(project):
    root, cfg = project
    records = [*GOOD, {**GOOD[2], "question": "Rome is in ___."}]
    fails(
        root, {**cfg, "tasks": local_task(root, records)}, r"data/train.jsonl:4: record 2: field 'id' repeats line 3's"
    )


@pytest.mark.parametrize("value,hint", [("1.0e9", "1.0e+9"), ("1e-4", "1.0e-4")])
def test_a_yaml_number_read_as_text_says_how_to_write_it(project, value, hint):
    """PyYAML reads 1.0e9 and 1e-4 as strings (YAML 1.1 floats need a dot and a signed exponent)."""
    root, cfg = project
    cfg["training"] = yaml.safe_load(f"{{learning_rate: {value}}}")
    fails(
        root,
        cfg,
        rf"field 'training.learning_rate': '{re.escape(value)}' is not of type 'number' "
        rf"\(YAML reads {re.escape(value)} as text: write {re.escape(hint)}\)",
    )
