"""A task from a Hugging Face dataset (`datasets.load_dataset`): the path for online users (XSum,
WMT16, SQuAD ...). The same call reads a local folder of the same shape, which is how it is tested."""


def _get(row, dotted):
    """row['answers.text'] -> row['answers']['text']; a trailing integer indexes a list."""
    value = row
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) and part.isdigit() else value[part]
    return value


def load_split(source, split):
    """Records {field: value} for one split of source = {path, name?, columns: {field: column}}."""
    import datasets
    ds = datasets.load_dataset(source["path"], source.get("name"), split=split)
    columns = source["columns"]
    missing = [c for c in columns.values() if c.split(".")[0] not in ds.column_names]
    if missing:
        raise ValueError(f"dataset {source['path']} split {split}: missing column(s) {', '.join(missing)} "
                         f"(has {', '.join(ds.column_names)})")
    out = []
    for i, row in enumerate(ds):
        rec = {field: _get(row, col) for field, col in columns.items()}
        rec.setdefault("id", f"{split}-{i}")
        if "answers" in rec and "target" not in rec:        # SQuAD-style: the first gold answer trains
            rec["target"] = rec["answers"][0]
        out.append(rec)
    return out
