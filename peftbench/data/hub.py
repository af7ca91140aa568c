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
"""


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
        rec.setdefault("id", f"{split}-{i}")
        if "answers" in rec and "target" not in rec:  # SQuAD-style: the first gold answer trains
            rec["target"] = rec["answers"][0]
        if all(len(str(rec[f]).split()) <= n for f, n in source.get("max_words", {}).items()):
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
