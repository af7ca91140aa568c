"""Data builders: deterministic, disjoint splits, answers that are spans, the hub path on local files."""

import json
from pathlib import Path

import pytest

from peftbench import config, io
from peftbench.data import bible, build, text, wiki

LEADS = [
    (
        "Anna Karenina",
        "Anna Karenina is a novel by the Russian author Leo Tolstoy, first published in 1878. "
        "Tolstoy called it his first true novel. It was released in installments in The Russian Messenger "
        "between 1875 and 1877, and many critics consider it among the greatest works of world literature.",
    ),
    ("Short", "Too short. Only two."),
    (
        "Arthur C. Clarke",
        "Sir Arthur C. Clarke was an English science-fiction writer and futurist born in 1917. "
        "Clarke co-wrote the screenplay for the 1968 film 2001: A Space Odyssey with Stanley Kubrick. He moved "
        "to Sri Lanka in 1956, where he lived until his death, and he was knighted by Elizabeth II in 2000.",
    ),
]


def test_split_sentences_keeps_initials_and_abbreviations():
    s = text.split_sentences("Arthur C. Clarke wrote it. Mr. Smith agreed. It sold 3 million copies.")
    assert s == ["Arthur C. Clarke wrote it.", "Mr. Smith agreed.", "It sold 3 million copies."]


def test_summarization_target_is_the_removed_first_sentence():
    rows = wiki.summarization(LEADS)
    assert [r["id"] for r in rows] == ["Anna Karenina", "Arthur C. Clarke"]
    r = rows[0]
    assert r["target"].startswith("Anna Karenina is a novel") and r["target"] not in r["document"]
    assert r["document"].startswith("Tolstoy called it")


def test_cloze_answer_is_a_span_of_the_context_and_blanked_in_the_question():
    rows = wiki.cloze_qa(LEADS, seed=0)
    assert rows
    for r in rows:
        assert r["target"] in r["context"]
        assert "_____" in r["question"] and r["target"] not in r["question"]
        assert r["answers"] == [r["target"]]


def test_real_wiki_builders_are_deterministic():
    leads = wiki.load_leads()
    assert len(leads) > 9000
    a, b = wiki.cloze_qa(leads, seed=3), wiki.cloze_qa(leads, seed=3)
    assert a == b and len(a) > 1000
    assert len(wiki.summarization(leads)) > 5000


def test_bible_pairs_align_by_reference_and_clean_markup():
    en = {
        "Genesis 1:0": "",
        "Genesis 1:1": "¶ In the beginning God created the heaven and the earth.",
        "Genesis 1:2": "And the earth was without form, and void;",
        "Exodus 2:3": "Only in English here ok",
    }
    es = {
        "Genesis 1:1": "EN el principio crió Dios los cielos y la tierra.",
        "Genesis 1:2": "Y la tierra estaba desordenada y vacía,",
    }
    pairs = bible.verse_pairs(en, es)
    assert [p["id"] for p in pairs] == ["Genesis 1:1", "Genesis 1:2"]
    assert pairs[0]["source"].startswith("In the beginning") and pairs[0]["target"].startswith("En el principio")


def test_real_sword_modules_are_readable():
    verses = bible.read_module(bible.MODULES["es"])
    assert verses["Genesis 1:1"].startswith("EN el principio")
    assert len(verses) > 31000


def test_build_writes_disjoint_deterministic_splits_with_rendered_prompts(tmp_path):
    task = config.load_task("qa")
    sizes = {"train": 20, "validation": 5, "test": 5, "seed": 7}
    build.build(task, sizes, tmp_path / "a")
    build.build(task, sizes, tmp_path / "b")
    for split in build.SPLITS:
        assert (tmp_path / "a" / f"{split}.jsonl").read_bytes() == (tmp_path / "b" / f"{split}.jsonl").read_bytes()
    rows = {s: io.read_jsonl(tmp_path / "a" / f"{s}.jsonl") for s in build.SPLITS}
    assert [len(rows[s]) for s in build.SPLITS] == [20, 5, 5]
    ids = [r["id"] for s in build.SPLITS for r in rows[s]]
    assert len(ids) == len(set(ids)), "splits overlap"
    r = rows["test"][0]
    assert r["prompt"] == task["prompt"].format(**r) and r["prompt"].endswith("Answer:")


def test_build_refuses_more_records_than_the_source_has(tmp_path):
    src = tmp_path / "tiny_hub"
    src.mkdir()
    (src / "train.jsonl").write_text(
        "".join(json.dumps({"document": f"d{i}", "summary": f"s{i}"}) + "\n" for i in range(5))
    )
    task = config.load_task("summarization")
    source = {
        "type": "hf",
        "path": str(src),
        "splits": {"validation": "train", "test": "train"},
        "columns": {"document": "document", "target": "summary"},
    }
    with pytest.raises(ValueError, match="asked for 4 records"):
        build.build(task, {"train": 3, "validation": 1, "test": 4}, tmp_path / "out", source=source)


@pytest.mark.parametrize(
    "task_name,columns,rows",
    [
        (
            "summarization",
            {"document": "document", "target": "summary"},
            [{"document": f"Article {i} text.", "summary": f"Summary {i}.", "id": str(i)} for i in range(12)],
        ),
        (
            "translation",
            {"source": "translation.en", "target": "translation.ro"},
            [{"translation": {"en": f"house {i}", "ro": f"casa {i}"}} for i in range(12)],
        ),
        (
            "qa",
            {"context": "context", "question": "question", "answers": "answers.text"},
            [
                {
                    "id": f"q{i}",
                    "title": "t",
                    "context": f"Paris is in France {i}.",
                    "question": f"Where is Paris {i}?",
                    "answers": {"text": ["France", "in France"], "answer_start": [12, 9]},
                }
                for i in range(12)
            ],
        ),
    ],
)
def test_hub_source_on_a_local_folder_with_the_datasets_columns(tmp_path, task_name, columns, rows):
    """XSum / WMT16 / SQuAD column shapes, read by the same datasets.load_dataset call as the hub."""
    src = tmp_path / "hub_copy"
    src.mkdir()
    for split in ("train", "validation", "test"):
        (src / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = config.load_task(task_name)
    counts = build.build(
        task,
        {"train": 6, "validation": 2, "test": 3},
        tmp_path / "out",
        source={"type": "hf", "path": str(src), "columns": columns},
    )
    assert counts == {"train": 6, "validation": 2, "test": 3}
    test = io.read_jsonl(tmp_path / "out" / "test.jsonl")
    for field in task["fields"]:
        assert f"{{{field}}}" not in test[0]["prompt"] and test[0][field] in test[0]["prompt"]
    if task_name == "qa":
        assert test[0]["answers"] == ["France", "in France"] and test[0]["target"] == "France"


# ---- issue 27: inputs that run away are refused at the data stage, before any file is written --------------


def _local_qa(tmp_path, splits):
    """tasks/qa (its lm_eval.yaml: max_gen_toks 16) reading the given records as its own jsonl files."""
    import shutil

    task = config.load_task("qa")
    folder = tmp_path / "qa"
    shutil.copytree(task["dir"], folder)
    shutil.copy(config.TASKS / "lm_eval_generate.yaml", tmp_path)  # its include: ../lm_eval_generate.yaml
    for split, rows in splits.items():
        io.write_jsonl(folder / f"{split}.jsonl", rows)
    source = {"type": "jsonl", "files": {s: f"{s}.jsonl" for s in splits}}
    return {**task, "dir": str(folder), "source": source}


def _qa_record(i, context="Paris is in France."):
    return {"id": f"r{i}", "context": context, "question": "Paris is in ___.", "target": "France"}


@pytest.mark.parametrize(
    "split,words,pattern",
    [
        # a 10 MB test record: lm-eval cut it to 2,032 tokens and the latency probe generated from all of it
        (
            "test",
            2_000_000,
            r"its prompt has at least [\d,]+ tokens, more than the 2,031 left of the model's context of 2,048 ",
        ),
        # just over: tokenized, exact count; the limit is the context less max_gen_toks and a BOS
        ("test", 2040, r"its prompt has [\d,]+ tokens, more than the 2,031 left of the model's context of 2,048 "),
        ("train", 2_000_000, r"at least [\d,]+ tokens exceed training.max_seq_len=384"),
    ],
)
def test_a_record_beyond_the_models_context_is_refused_before_anything_is_written(
    tiny_dir, tmp_path, monkeypatch, split, words, pattern
):
    import time

    from peftbench.stages import pipeline

    rows = {s: [_qa_record(i) for i in range(3)] for s in ("train", "validation", "test")}
    rows[split][1] = _qa_record(1, "word " * words)
    task = _local_qa(tmp_path, rows)
    monkeypatch.setattr(pipeline.config, "load_task", lambda name, *where: task)
    out = tmp_path / "out"
    began = time.perf_counter()
    with pytest.raises(ValueError, match=rf"task qa, {split} split \(.*qa/{split}.jsonl\): record r1: " + pattern):
        pipeline.build_data("qa", {"train": 3, "validation": 3, "test": 3}, out, base_dir=tiny_dir, max_seq_len=384)
    assert time.perf_counter() - began < 15  # no tokenization of megabytes
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


def test_test_prompts_within_the_context_pass(tiny_dir, tmp_path, monkeypatch):
    from peftbench.stages import pipeline

    rows = {s: [_qa_record(i) for i in range(3)] for s in ("train", "validation", "test")}
    rows["test"][1] = _qa_record(1, "word " * 1900)  # long, but within 2,048 - 16 - 1
    task = _local_qa(tmp_path, rows)
    monkeypatch.setattr(pipeline.config, "load_task", lambda name, *where: task)
    counts = pipeline.build_data(
        "qa", {"train": 3, "validation": 3, "test": 3}, tmp_path / "out", base_dir=tiny_dir, max_seq_len=384
    )
    assert counts == {"train": 3, "validation": 3, "test": 3}


@pytest.mark.parametrize(
    "edit, pattern",
    [  # f1 misspelled the same way in task.yaml and lm_eval.yaml: every DAG-build check agrees with itself
        (
            ("{metric: f1,", "{metric: f1_score,"),
            r"metric_list: 'f1_score' is not among what process_results returns \(\['exact_match', 'f1'\]\)",
        ),
        # a mean over what is not a number: lm-eval's "unsupported operand" after the fine-tuning, before
        (
            ("{metric: f1, aggregation: mean", "{metric: f1, aggregation: bleu"),
            r"metric_list: 'f1' \(aggregation 'bleu'\) cannot aggregate",
        ),
    ],
)
def test_a_scorer_that_does_not_return_its_metrics_fails_the_data_stage(tiny_dir, tmp_path, monkeypatch, edit, pattern):
    """Issue 27's extension path: lm-eval died 97 s into the run, after training, naming no metric or file."""
    from peftbench.stages import pipeline

    task = _local_qa(tmp_path, {s: [_qa_record(i) for i in range(3)] for s in ("train", "validation", "test")})
    yml = Path(task["dir"]) / "lm_eval.yaml"
    yml.write_text(yml.read_text().replace(*edit))
    monkeypatch.setattr(pipeline.config, "load_task", lambda name, *where: task)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"qa/lm_eval.yaml: " + pattern):
        pipeline.build_data("qa", {"train": 3, "validation": 3, "test": 3}, out, base_dir=tiny_dir, max_seq_len=384)
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


def test_a_prompt_lm_eval_would_cut_fails_the_evaluation(tiny):
    """What the data stage cannot see (a method's demonstrations, its chat template): lm-eval's left truncation
    is refused where it would happen, not scored."""
    from peftbench.stages import evaluate

    model, tok = tiny
    lm = evaluate._hflm()(pretrained=model, tokenizer=tok, batch_size=2, device="cpu")
    ids, _ = lm.tok_batch_encode(["Q: where?\nA:", "word " * 50], left_truncate_len=100)
    assert ids.shape[0] == 2
    with pytest.raises(ValueError, match=r"a prompt of [\d,]+ tokens .* exceeds the 100 lm-eval leaves for it"):
        lm.tok_batch_encode(["Q: where?\nA:", "word " * 500], left_truncate_len=100)
