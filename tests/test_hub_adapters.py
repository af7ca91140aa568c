"""Every hub-sourced task, offline: a local copy of the dataset with the hub's exact columns, feature types
and file layout (Parquet per config and split, the README `configs:` of a named config, the parquet
converter's `default/` tree for `refs/convert/parquet`), a few records written here, read through the same
peftbench.data.build -> datasets.load_dataset path the paper profiles use online. Only `path` changes."""

from pathlib import Path

import datasets
import pytest
from datasets import ClassLabel, Features, Sequence, Translation, Value

from peftbench import config, io
from peftbench.data import build

S = Value("string")
ARC_FEATURES = Features(
    {"id": S, "question": S, "choices": {"text": Sequence(S), "label": Sequence(S)}, "answerKey": S}
)


def arc_rows(split):
    return [
        {
            "id": f"Mercury_{split}_{i}",
            "question": f"Which object is a source of light {i}?",
            "choices": {"text": ["a mirror", "the Sun", "the Moon", "a window"], "label": ["A", "B", "C", "D"]},
            "answerKey": "B",
        }
        for i in range(4)
    ] + [
        {
            "id": f"NYSED_{split}_9",
            "question": "What do plants need to grow?",
            "choices": {"text": ["darkness", "sunlight", "salt"], "label": ["1", "2", "3"]},
            "answerKey": "2",
        }
    ]


# task -> (features, rows(split), layout, dataset splits); layout: "named" (README configs, <config>/<split>-*),
# "converted" (refs/convert/parquet's default/<split>/0000.parquet), "data" (data/<split>-*, no README)
HUB = {
    "e2e": (
        Features({"meaning_representation": S, "human_reference": S}),
        lambda split: [
            {
                "meaning_representation": f"name[The Vaults], eatType[pub], priceRange[£{p}]",
                "human_reference": f"The Vaults is a pub costing £{p}, reference {r}.",
            }
            for p in (20, 30, 40)
            for r in range(3)
        ],
        "converted",
        ("train", "validation", "test"),
    ),
    "xsum": (
        Features({"document": S, "summary": S, "id": S}),
        lambda split: [
            {
                "document": f"The council said on Monday that the bridge {i} would close. " * (80 if i == 4 else 3),
                "summary": f"A bridge {i} is to close.",
                "id": f"{split}{i}",
            }
            for i in range(5)
        ],
        "converted",
        ("train", "validation", "test"),
    ),
    "wmt16-en-ro": (
        Features({"translation": Translation(languages=["ro", "en"])}),
        lambda split: [
            {"translation": {"en": f"The house {i} is red.", "ro": f"Casa {i} este roșie."}} for i in range(5)
        ],
        "named",
        ("train", "validation", "test"),
    ),
    "squad": (
        Features(
            {
                "id": S,
                "title": S,
                "context": S,
                "question": S,
                "answers": {"text": Sequence(S), "answer_start": Sequence(Value("int32"))},
            }
        ),
        lambda split: [
            {
                "id": f"5733be{split}{i}",
                "title": "Paris",
                "context": f"Paris is the capital of France {i}.",
                "question": f"Of which country is Paris the capital {i}?",
                "answers": {"text": ["France", "of France"], "answer_start": [24, 21]},
            }
            for i in range(6)
        ],
        "named",
        ("train", "validation"),
    ),
    "boolq": (
        Features({"question": S, "passage": S, "idx": Value("int32"), "label": ClassLabel(names=["False", "True"])}),
        lambda split: [
            {"question": f"is the sun a star {i}", "passage": "The Sun is a star.", "idx": i, "label": i % 2}
            for i in range(6)
        ],
        "named",
        ("train", "validation", "test"),
    ),
    "piqa": (
        Features({"goal": S, "sol1": S, "sol2": S, "label": ClassLabel(names=["0", "1"])}),
        lambda split: [
            {
                "goal": f"To dry wet shoes {i}",
                "sol1": "put them in the freezer",
                "sol2": "stuff them with newspaper",
                "label": 1,
            }
            for i in range(5)
        ],
        "data",
        ("train", "validation"),
    ),
    "siqa": (
        Features({"context": S, "question": S, "answerA": S, "answerB": S, "answerC": S, "label": S}),
        lambda split: [
            {
                "context": f"Tracy lent Riley her notes {i}.",
                "question": "What will Riley want to do next?",
                "answerA": "thank Tracy",
                "answerB": "burn the notes",
                "answerC": "go to sleep",
                "label": "1",
            }
            for i in range(5)
        ],
        "data",
        ("train", "validation"),
    ),
    "hellaswag": (
        Features(
            {
                "ind": Value("int32"),
                "activity_label": S,
                "ctx_a": S,
                "ctx_b": S,
                "ctx": S,
                "endings": Sequence(S),
                "source_id": S,
                "split": S,
                "split_type": S,
                "label": S,
            }
        ),
        lambda split: [
            {
                "ind": i,
                "activity_label": "Removing ice from car",
                "ctx_a": "A man scrapes the windshield.",
                "ctx_b": "then",
                "ctx": "A man scrapes the windshield. then",
                "endings": ["he eats it.", "he clears the glass.", "he flies away.", "he sings."],
                "source_id": "activitynet~v_x",
                "split": split,
                "split_type": "indomain",
                "label": "1",
            }
            for i in range(5)
        ],
        "data",
        ("train", "validation"),
    ),
    "winogrande": (
        Features({"sentence": S, "option1": S, "option2": S, "answer": S}),
        lambda split: [
            {
                "sentence": f"Sarah was a better surgeon than Maria so _ got the easy cases {i}.",
                "option1": "Sarah",
                "option2": "Maria",
                "answer": "2",
            }
            for i in range(5)
        ],
        "named",
        ("train", "validation"),
    ),
    "arc-easy": (ARC_FEATURES, arc_rows, "named", ("train", "validation", "test")),
    "arc-challenge": (ARC_FEATURES, arc_rows, "named", ("train", "validation", "test")),
    "openbookqa": (
        Features({"id": S, "question_stem": S, "choices": {"text": Sequence(S), "label": Sequence(S)}, "answerKey": S}),
        lambda split: [
            {
                "id": f"7-98{split}{i}",
                "question_stem": f"A magnet will stick to {i}",
                "choices": {"text": ["wood", "an iron nail", "glass", "paper"], "label": ["A", "B", "C", "D"]},
                "answerKey": "B",
            }
            for i in range(5)
        ],
        "named",
        ("train", "validation", "test"),
    ),
}
HUB_TASKS = sorted(
    p.parent.name for p in config.TASKS.glob("*/task.yaml") if config.load_task(p.parent.name)["source"]["type"] == "hf"
)


def local_copy(root, source, features, rows, layout, splits):
    """The hub repository's layout on disk, Parquet written by datasets with the hub's features."""
    root.mkdir(parents=True)
    name = source.get("name")
    for split in splits:
        ds = datasets.Dataset.from_list(rows(split), features=features)
        if layout == "converted":
            path = root / "default" / split / "0000.parquet"
        elif layout == "named":
            path = root / (name or "plain_text") / f"{split}-00000-of-00001.parquet"
        else:
            path = root / "data" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(path))
    if layout == "named":
        config_name = name or "plain_text"
        files = "".join(f"  - split: {s}\n    path: {config_name}/{s}-*\n" for s in splits)
        (root / "README.md").write_text(
            f"---\nconfigs:\n- config_name: {config_name}\n"
            + ("" if name else "  default: true\n")
            + f"  data_files:\n{files}---\n"
        )
    return root


def test_every_hub_task_has_an_offline_copy_here():
    assert set(HUB) | set(SPLIT_SOURCES) == set(HUB_TASKS)


@pytest.mark.parametrize("task_name", [t for t in HUB_TASKS if t in HUB])
def test_hub_adapter_on_a_local_copy_with_the_datasets_columns(tmp_path, task_name):
    task = config.load_task(task_name)
    features, rows, layout, splits = HUB[task_name]
    copy = local_copy(tmp_path / "hub" / task_name, task["source"], features, rows, layout, splits)
    source = {**task["source"], "path": str(copy)}
    sizes = {"train": 2, "validation": 1, "test": 2}
    assert build.build(task, sizes, tmp_path / "out", source=source) == sizes
    out = {s: io.read_jsonl(tmp_path / "out" / f"{s}.jsonl") for s in build.SPLITS}
    ids = [r["id"] for s in build.SPLITS for r in out[s]]
    assert len(ids) == len(set(ids)), "splits overlap"
    for rec in out["test"]:
        assert rec["prompt"] == task["prompt"].format(**rec)
        assert rec["target"] in rec["answers"] or rec["target"].endswith(rec["answers"][0])
        for field in task["fields"]:
            assert field in rec
    check = CHECKS.get(task_name)
    if check:
        check(out)


def _e2e(out):
    """The test split is grouped by MR: one record per MR, all its references as answers."""
    for rec in out["test"]:
        assert len(rec["answers"]) == 3 and all(a.startswith("The Vaults is a pub") for a in rec["answers"])
        assert rec["target"] == rec["answers"][0] and "name[The Vaults]" in rec["prompt"]
    assert all(len(r["answers"]) == 1 for r in out["train"])  # training keeps one row per reference


def _xsum(out):
    """max_words drops the 400-word article (id ...4) instead of truncating it."""
    assert all(not r["id"].endswith("4") for s in out.values() for r in s)
    assert out["test"][0]["target"].startswith("A bridge")


def _squad(out):
    rec = out["test"][0]
    assert rec["answers"] == ["France", "of France"] and rec["target"] == "France"
    assert rec["id"].startswith("5733bevalidation")  # test = the hub's validation split


def _commonsense(label, target):
    def check(out):
        rec = out["test"][0]
        assert rec["answers"] == [label] and rec["target"] == target
        assert f"Answer format: {'/'.join(rec['choices'])}" in rec["prompt"]
        assert rec["prompt"].endswith("\n")  # pyreft's template: the instruction + "\n"

    return check


def _arc(out):
    by_id = {r["id"]: r for s in out.values() for r in s}
    for rec in by_id.values():  # A-D letters and 1-3 digits both resolve
        assert rec["answers"] == ["answer2"] and len(rec["choices"]) in (3, 4)


CHECKS = {
    "e2e": _e2e,
    "xsum": _xsum,
    "squad": _squad,
    "boolq": None,
    "piqa": _commonsense("solution2", "the correct answer is solution2"),
    "siqa": _commonsense("answer1", "the correct answer is answer1"),
    "hellaswag": _commonsense("ending2", "the correct answer is ending2"),
    "winogrande": _commonsense("option2", "the correct answer is option2"),
    "arc-easy": _arc,
    "arc-challenge": _arc,
    "openbookqa": _commonsense("answer2", "the correct answer is answer2"),
}


def test_boolq_labels_map_to_true_and_false(tmp_path):
    task = config.load_task("boolq")
    features, rows, layout, splits = HUB["boolq"]
    copy = local_copy(tmp_path / "boolq", task["source"], features, rows, layout, splits)
    from peftbench.data import hub

    recs = hub.load_split({**task["source"], "path": str(copy)}, "validation")
    assert [r["answers"] for r in recs[:2]] == [["false"], ["true"]]
    assert recs[1]["instruction"].startswith(
        "Please answer the following question with true or false, question: is the sun"
    )
    assert recs[1]["id"] == "validation-1"  # idx restarts in every split


def test_a_missing_column_is_named(tmp_path):
    """A dataset whose columns differ from the task's (a renamed hub column) fails with the columns named."""
    task = config.load_task("winogrande")
    features = Features({"sentence": S, "option1": S, "option2": S, "label": S})
    rows = lambda split: [{"sentence": "a _ b", "option1": "x", "option2": "y", "label": "1"}]  # noqa: E731
    copy = local_copy(tmp_path / "wg", task["source"], features, rows, "named", ("train", "validation"))
    with pytest.raises(ValueError, match="missing column.*answer.*has sentence, option1, option2, label"):
        build.build(
            task,
            {"train": 1, "validation": 1, "test": 1},
            tmp_path / "out",
            source={**task["source"], "path": str(copy)},
        )


def test_paper_tasks_ship_their_lm_eval_files():
    for name in HUB_TASKS:
        d = Path(config.TASKS / name)
        assert (d / "lm_eval.yaml").is_file() and (d / "README.md").is_file()
        assert any(p.suffix == ".py" for p in config.lm_eval_files(d))  # its scorer: utils.py, or a shared one
        assert f"task: peftbench_{name}\n" in (d / "lm_eval.yaml").read_text()


# Tasks whose splits read more than one dataset (a `source.splits` entry with its own path): each dataset
# gets its local copy; peft's MetaMathQA benchmark trains on meta-math/MetaMathQA (one JSON file at the
# repository's root, MetaMathQA-395K.json: query, response, type, original_question) and tests on openai/gsm8k.
def metamath_rows():
    short = [
        {
            "query": f"What is {i} + {i}?",
            "response": f"We add {i} and {i} to get {2 * i}.\nThe answer is: {2 * i}",
            "type": "GSM_Rephrased",
            "original_question": f"What is {i} plus {i}?",
        }
        for i in range(5)
    ]
    long = {"query": "x" * 1200, "response": "y" * 100, "type": "MATH_AnsAug", "original_question": "x"}  # 1,301 chars
    return short + [long]


def gsm8k_rows(split):
    return [
        {"question": f"Tom has {i} apples and buys 2 more. How many now?", "answer": f"{i} + 2 = {i + 2}\n#### {i + 2}"}
        for i in range(4)
    ]


def metamath_gsm8k_copy(root, task):
    src = task["source"]
    gsm8k = local_copy(
        root / "gsm8k", src, Features({"question": S, "answer": S}), gsm8k_rows, "named", ("train", "test")
    )
    metamath = root / "MetaMathQA"
    metamath.mkdir(parents=True)
    io.write_json(metamath / "MetaMathQA-395K.json", metamath_rows())
    train = {**src["splits"]["train"], "path": str(metamath)}
    return {**src, "path": str(gsm8k), "splits": {**src["splits"], "train": train}}


SPLIT_SOURCES = {"metamath-gsm8k": metamath_gsm8k_copy}


def test_metamath_gsm8k_trains_on_metamathqa_and_tests_on_gsm8k(tmp_path):
    task = config.load_task("metamath-gsm8k")
    source = metamath_gsm8k_copy(tmp_path / "hub", task)
    sizes = {"train": 5, "validation": 2, "test": 4}
    assert build.build(task, sizes, tmp_path / "out", source=source) == sizes
    out = {s: io.read_jsonl(tmp_path / "out" / f"{s}.jsonl") for s in build.SPLITS}
    # the 1,301-character record is filtered out (peft's CHAR_LIMIT 1300): asking for 6 fails
    with pytest.raises(ValueError, match="asked for 6 records"):
        build.build(task, {**sizes, "train": 6}, tmp_path / "out6", source=source)
    assert all(r["id"].startswith("metamath/train-") and "The answer is: " in r["target"] for r in out["train"])
    assert all(r["id"].startswith("train-") and "#### " in r["target"] for r in out["validation"])
    assert sorted(r["id"] for r in out["test"]) == [f"test-{i}" for i in range(4)]
    ids = [r["id"] for s in build.SPLITS for r in out[s]]
    assert len(ids) == len(set(ids)), "splits overlap"
    rec = out["train"][0]
    assert rec["prompt"] == f"Question: {rec['question']} Think step by step.\nAnswer:"
    # the data rule's inputs cover both local copies
    files = build.inputs(task, {**sizes, "source": source})
    assert any(f.name == "MetaMathQA-395K.json" for f in files) and any(f.suffix == ".parquet" for f in files)
