"""What a task record must be, checked wherever records enter (preflight for local files, the data
stage for every source): the target a string, each of the task's fields a string (or a list of
strings: a multiple-choice task's choices), `answers` a list of strings, `id` a string or an integer.
A number or null in a field would otherwise be formatted into the prompt ("123", "None") or fail deep inside tokenization.
A target or answer must say something: an empty or whitespace-only one (or one of punctuation alone, which a
scorer's normalisation empties) is matched by an empty output, and a task of such records scores a perfect
exact match for "::::" (issue 27)."""


def check(rec, fields, where):
    """Raise ValueError naming `where` (file:line or task/split), the record and the field."""
    rid = rec.get("id")
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise ValueError(f"{where}: field 'id': {rid!r} is not a string or an integer")
    if "target" in rec and not isinstance(rec["target"], str):
        raise ValueError(f"{where}: record {rid}: field 'target' is {_kind(rec['target'])}, expected a string")
    for f in fields:  # a list of strings is a field too (a multiple-choice task's choices)
        if f in rec and not (isinstance(rec[f], str) or _strings(rec[f])):
            raise ValueError(f"{where}: record {rid}: field '{f}' is {_kind(rec[f])}, expected a string")
    answers = rec.get("answers")
    if answers is not None and not _strings(answers):
        raise ValueError(
            f"{where}: record {rid}: field 'answers' is {_kind(answers)}, expected a non-empty list of strings"
        )
    gold = [("target", rec["target"])] if isinstance(rec.get("target"), str) else []
    gold += [(f"answers[{i}]", a) for i, a in enumerate(answers or [])]
    for field, text in gold:
        if not any(c.isalnum() for c in text):
            what = "empty" if not text else "whitespace only" if not text.strip() else f"{text!r}, no letter or digit"
            raise ValueError(
                f"{where}: record {rid}: field '{field}' is {what}: an empty or punctuation-only answer is "
                f"matched by an output that says nothing, so its score would be a false perfect"
            )
    return rec


def _strings(value):
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _kind(value):
    return "null" if value is None else f"{type(value).__name__} {value!r}"[:80]
