"""Build one task's train/validation/test JSONL, deterministically (fixed seed, sorted sources).

Each record: id, the task's fields, target (what training predicts), answers (gold list for scoring,
defaults to [target]) and prompt (the task's template rendered once here, so training and lm-eval
see byte-identical prompts for every method)."""

import random
from pathlib import Path

from peftbench import io
from peftbench.data import bible, hub, records, wiki

SPLITS = ("train", "validation", "test")
BUILTIN = {
    "wiki_summarization": lambda seed: wiki.summarization(),
    "wiki_cloze_qa": lambda seed: wiki.cloze_qa(seed=seed),
    "bible_en_es": lambda seed: bible.verse_pairs(),
}


def candidates(source, sizes, seed, base="."):
    """{split: records} before rendering. Splits that share a source pool get disjoint slices.
    `base`: the folder a jsonl source's relative paths start from (the task folder, or the project
    for a profile's override)."""
    if source["type"] == "builtin":
        if source.get("builder") not in BUILTIN:
            raise ValueError(
                f"source: field 'builder': unknown builtin '{source.get('builder')}' (known: {', '.join(BUILTIN)})"
            )
        pools = {split: "all" for split in SPLITS}
        load = lambda _: BUILTIN[source["builder"]](seed)
    elif source["type"] == "jsonl":  # the user's own data, one file per split
        pools = {split: str(Path(base) / source["files"][split]) for split in SPLITS}
        load = lambda pool: io.read_jsonl(pool, required=("id", "target"))
    elif source["type"] == "hf":
        entries = {split: source.get("splits", {}).get(split, split) for split in SPLITS}
        pools = {split: hub.pool_key(entry) for split, entry in entries.items()}
        by_pool = {pools[split]: hub.split_source(source, entry) for split, entry in entries.items()}
        load = lambda pool: hub.load_split(*by_pool[pool])
    else:
        raise ValueError(f"source: field 'type': unknown source type '{source['type']}'")
    out = {}
    for pool in dict.fromkeys(pools.values()):
        rows = sorted(load(pool), key=lambda r: str(r["id"]))
        random.Random(seed).shuffle(rows)
        start = 0
        for split in SPLITS:
            if pools[split] != pool:
                continue
            n = sizes[split]
            if start + n > len(rows):
                raise ValueError(
                    f"split '{split}': asked for {n} records, the source has only "
                    f"{len(rows) - start} left in pool '{pool}'"
                )
            out[split] = rows[start : start + n]
            start += n
    return out


def inputs(task, sizes):
    """Every local file the data stage reads for this task: its task.yaml, a jsonl source's split files,
    the files of an hf source that is a local folder. The data rule's inputs, so that an edited record
    makes Snakemake rebuild the data and rerun every run downstream."""
    source = sizes.get("source") or task["source"]
    base = Path(".") if sizes.get("source") else Path(task["dir"])
    files = [Path(task["dir"]) / "task.yaml"]
    if source["type"] == "jsonl":
        files += [base / source["files"][split] for split in SPLITS]
    elif source["type"] == "hf":  # local copies (load_dataset reads the cwd), a split's own dataset too
        paths = [
            source["path"],
            *(e["path"] for e in source.get("splits", {}).values() if isinstance(e, dict) and "path" in e),
        ]
        for local in (Path(p) for p in dict.fromkeys(paths) if Path(p).exists()):
            files += _files_under(local)
    return list(dict.fromkeys(files))  # one split file may serve several splits


def _files_under(local):
    """A local dataset's files (a folder's, hidden ones left out), or the file itself."""
    return (
        sorted(
            f
            for f in local.rglob("*")
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(local).parts)
        )
        if local.is_dir()
        else [local]
    )


def render(rec, task, split=None):
    where = f"task {task['name']}" + (f", {split} split" if split else "")
    missing = [f for f in task["fields"] + ["target"] if f not in rec]
    if missing:
        raise ValueError(f"{where}: record {rec.get('id')} lacks field(s) {', '.join(missing)}")
    records.check(rec, task["fields"], where)
    rec = dict(rec)
    rec["id"] = str(rec["id"])
    rec.setdefault("answers", [rec["target"]])
    rec["prompt"] = task["prompt"].format(**rec)
    return rec


def leaks(rendered):
    """Test records whose prompt also occurs in the train or validation split: a score on them measures
    memorisation. {test id: the split it also occurs in}."""
    seen = {" ".join(r["prompt"].split()): split for split in ("train", "validation") for r in rendered[split]}
    return {r["id"]: seen[key] for r in rendered["test"] if (key := " ".join(r["prompt"].split())) in seen}


def origin(task, split, source=None):
    """Where a split's records come from, for an error: the task and split, and a jsonl source's file."""
    src = source or task["source"]
    where = f"task {task['name']}, {split} split"
    if src["type"] == "jsonl":
        where += f" ({Path('.' if source else task['dir']) / src['files'][split]})"
    return where


def build(task, sizes, out_dir, source=None, check=None):
    """Write {out_dir}/{train,validation,test}.jsonl for a validated task spec, and checks.json: the counts
    and the test records that leak from the training data (a loud warning, shown in the report).
    `check({split: rendered records})` runs before anything is written: a refused record leaves no file."""
    seed = sizes.get("seed", 1234)
    splits = candidates(source or task["source"], sizes, seed, base="." if source else task["dir"])
    out_dir = Path(out_dir)
    rendered = {split: [render(r, task, split) for r in splits[split]] for split in SPLITS}
    if check is not None:
        check(rendered)
    leaked = leaks(rendered)
    warnings = []
    if leaked:
        warnings.append(
            f"task {task['name']}: {len(leaked)} of {len(rendered['test'])} test records also occur in the "
            f"training data (same prompt): {', '.join(f'{i} ({s})' for i, s in list(leaked.items())[:5])}"
            f"{' ...' if len(leaked) > 5 else ''}; their scores measure memorisation"
        )
        print("WARNING: " + warnings[-1])
    for split in SPLITS:
        io.write_jsonl(out_dir / f"{split}.jsonl", rendered[split])
    counts = {split: len(rows) for split, rows in splits.items()}
    io.write_json(out_dir / "checks.json", {"counts": counts, "test_in_training_data": leaked, "warnings": warnings})
    return counts
