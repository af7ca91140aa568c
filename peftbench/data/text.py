"""Small text utilities, written by hand because they are a few lines: sentence splitting for
Wikipedia leads (a regex with an abbreviation guard, deterministic and dependency-free)."""

import re

_ABBREV = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "jr",
    "sr",
    "prof",
    "inc",
    "ltd",
    "co",
    "corp",
    "vs",
    "etc",
    "no",
    "vol",
    "mt",
    "ft",
    "gen",
    "col",
    "lt",
    "sgt",
    "rev",
    "hon",
    "approx",
    "c",
    "ca",
    "i.e",
    "e.g",
    "u.s",
    "u.k",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "fig",
    "al",
    "op",
    "b",
    "d",
}
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text):
    """Split on . ! ? followed by space and a capital/digit, unless the period ends an abbreviation
    or an initial ("Arthur C. Clarke")."""
    sentences, start = [], 0
    for m in _BOUNDARY.finditer(text):
        before = text[start : m.start()].rstrip("\"')]")
        last = before.rsplit(None, 1)[-1] if before.split() else ""
        word = last.rstrip(".").lower()
        if last.endswith(".") and (word in _ABBREV or (len(word) == 1 and word.isalpha())):
            continue
        sentences.append(text[start : m.start()].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return [s for s in sentences if s]


def n_words(text):
    return len(text.split())
