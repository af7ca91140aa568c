"""What a task record must be, checked wherever records enter (preflight for local files, the data
stage for every source): each of the task's fields a string (or a list of strings: option labels) and the target a string, `answers` a list of
strings, `id` a string or an integer. A number or null in a field would otherwise be formatted into
the prompt ("123", "None") or fail deep inside tokenization."""


def check(rec, fields, where, prompt=None):
    """Raise ValueError naming `where` (file:line or task/split), the record and the field. A field the
    prompt template uses must be a string; another (a commonsense set's option labels) may be a list of them."""
    in_prompt = set(fields) if prompt is None else {f for f in fields if "{" + f + "}" in prompt}
    rid = rec.get("id")
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise ValueError(f"{where}: field 'id': {rid!r} is not a string or an integer")
    for f in [*fields, "target"]:
        as_list = f != "target" and f not in in_prompt
        if f in rec and not _text(rec[f], allow_list=as_list):
            raise ValueError(f"{where}: record {rid}: field '{f}' is {_kind(rec[f])}, expected a string"
                             + (" or a list of strings" if as_list else ""))
    answers = rec.get("answers")
    if answers is not None and not (isinstance(answers, list) and answers and all(isinstance(a, str) for a in answers)):
        raise ValueError(f"{where}: record {rid}: field 'answers' is {_kind(answers)}, expected a non-empty list of strings")
    return rec


def _text(value, allow_list):
    """A string; or, for a task field (a commonsense set's option labels), a list of strings."""
    return isinstance(value, str) or (allow_list and isinstance(value, list) and all(isinstance(v, str) for v in value))


def _kind(value):
    return "null" if value is None else f"{type(value).__name__} {value!r}"[:80]
