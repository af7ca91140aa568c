"""A task from a Hugging Face dataset (`datasets.load_dataset`): the path for online users (XSum,
WMT16, SQuAD ...). The same call reads a local folder of the same shape, which is how it is tested.

source keys (task.yaml `source:` or a profile's `tasks.<name>.source`):
  path, name, revision   load_dataset's; `revision: refs/convert/parquet` reads the hub's Parquet copy of
                         a dataset that still ships a loading script (datasets >= 4 runs no scripts)
  columns                {field: column}; a dotted column reaches into structs/lists (answers.text)
  record                 instead of columns: a named row -> record builder (data/commonsense.py)
  max_words              {field: n}: drop rows whose field is longer (a record never gets truncated)
  group_references       {by: field, splits: [...]}: in those dataset splits, rows that share `by`
                         become one record whose `answers` are all their targets (E2E: one MR, ~8 refs)
  max_chars              {"field+field": n}: drop rows whose fields, joined by a space, are longer than n
                         characters (peft's MetaMathQA filter: len(f"{query} {response}") <= 1300)
  id_prefix              ids of rows without an id column: f"{id_prefix}{split}-{i}" (default no prefix)
  splits                 {our split: the dataset's split}; an entry may instead be a mapping that reads
                         another dataset for that split: {split, path, name?, revision?, columns | record,
                         max_words?, max_chars?, id_prefix?} (its own path, name and revision; the rest,
                         when absent, from the source). peft's MetaMathQA benchmark: train from
                         meta-math/MetaMathQA, validation and test from openai/gsm8k.
"""

import json

DATASET_KEYS = ("path", "name", "revision")


def split_source(source, entry):
    """(source, the dataset's split) that one split entry reads: a split name of `source`, or a mapping
    naming its own dataset (path, name, revision together) and optionally its own columns and filters."""
    if isinstance(entry, str):
        return source, entry
    if not isinstance(entry, dict) or "split" not in entry:
        raise ValueError(f"source: a split entry is a split name or a mapping with 'split' (got {entry!r})")
    base = {k: v for k, v in source.items() if k != "splits"}
    if "path" in entry:  # another dataset: its name and revision are its own (absent: none)
        base = {k: v for k, v in base.items() if k not in DATASET_KEYS}
    if "columns" in entry or "record" in entry:
        base = {k: v for k, v in base.items() if k not in ("columns", "record")}
    return {**base, **{k: v for k, v in entry.items() if k != "split"}}, entry["split"]


def pool_key(entry):
    """A hashable key for a split entry: splits with the same key draw disjoint slices of one pool."""
    return entry if isinstance(entry, str) else json.dumps(entry, sort_keys=True)


def _get(row, dotted):
    """row['answers.text'] -> row['answers']['text']; a trailing integer indexes a list."""
    value = row
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) and part.isdigit() else value[part]
    return value


def load_split(source, split):
    """Records {field: value} for one split of source = {path, name?, revision?, columns | record, ...}."""
    import datasets

    ds = datasets.load_dataset(source["path"], source.get("name"), split=split, revision=source.get("revision"))
    if "record" in source:
        from peftbench.data.commonsense import BUILDERS

        if source["record"] not in BUILDERS:
            raise ValueError(
                f"source: field 'record': unknown record builder '{source['record']}' (known: {', '.join(BUILDERS)})"
            )
        needed, make = BUILDERS[source["record"]]
    else:
        columns = source["columns"]
        needed = [c.split(".")[0] for c in columns.values()]
        make = lambda row: {field: _get(row, col) for field, col in columns.items()}  # noqa: E731
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise ValueError(
            f"dataset {source['path']} split {split}: missing column(s) {', '.join(missing)} "
            f"(has {', '.join(ds.column_names)})"
        )
    out = []
    for i, row in enumerate(ds):
        rec = make(row)
        rec.setdefault("id", f"{source.get('id_prefix', '')}{split}-{i}")
        if "answers" in rec and "target" not in rec:  # SQuAD-style: the first gold answer trains
            rec["target"] = rec["answers"][0]
        too_long = any(len(str(rec[f]).split()) > n for f, n in source.get("max_words", {}).items()) or any(
            len(" ".join(str(rec[f]) for f in fields.split("+"))) > n
            for fields, n in source.get("max_chars", {}).items()
        )
        if not too_long:
            out.append(rec)
    group = source.get("group_references")
    if group and split in group.get("splits", []):
        out = group_references(out, group["by"])
    return out


def group_references(records, by):
    """One record per distinct `by` value (first occurrence's id and target), answers = every target,
    in order: a multi-reference test set (E2E NLG scores each MR against all its references)."""
    groups = {}
    for rec in records:
        groups.setdefault(rec[by], {**rec, "answers": []})["answers"].append(rec["target"])
    return list(groups.values())
