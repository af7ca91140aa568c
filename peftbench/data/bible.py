"""English -> Spanish verse pairs from Debian's SWORD modules: `sword-text-kjv` (King James Version)
and `sword-text-sparv` (Reina-Valera 1909), both public domain, aligned by verse reference."""

import re
import shutil
import subprocess

MODULES = {"en": "engKJV2006eb", "es": "spaRV1909eb"}
APT = "apt-get install libsword-utils sword-text-kjv sword-text-sparv"


def read_module(module):
    """{'Genesis 1:1': 'In the beginning ...'} from `mod2imp -s` (markup stripped)."""
    if shutil.which("mod2imp") is None:
        raise FileNotFoundError(f"translation source needs Debian's SWORD tools and texts: {APT}")
    res = subprocess.run(["mod2imp", module, "-s"], capture_output=True, text=True)
    if res.returncode or "$$$" not in res.stdout:
        raise FileNotFoundError(f"SWORD module {module} not readable by mod2imp ({APT}): {res.stderr.strip()}")
    verses, key = {}, None
    for line in res.stdout.splitlines():
        if line.startswith("$$$"):
            key = line[3:].strip()
        elif key and line.strip():
            verses[key] = (verses.get(key, "") + " " + line).strip()
    return verses


def clean(text, verse_no):
    text = re.sub(r"\s+", " ", text.replace("¶", "")).strip()
    first, _, rest = text.partition(" ")
    if verse_no == 1 and len(first) > 1 and first.isupper():  # drop capital at a chapter's start: "EN el"
        text = (first.capitalize() + " " + rest).strip()
    return text


def verse_pairs(en=None, es=None):
    en = en if en is not None else read_module(MODULES["en"])
    es = es if es is not None else read_module(MODULES["es"])
    out = []
    for key, src in en.items():
        m = re.fullmatch(r"(.+) (\d+):(\d+)", key)
        if not m or m.group(3) == "0" or key not in es:  # skip headings (0:0, n:0) and unaligned
            continue
        verse_no = int(m.group(3))
        source, target = clean(src, verse_no), clean(es[key], verse_no)
        if 5 <= len(source.split()) <= 40 and 5 <= len(target.split()) <= 45:
            out.append({"id": key, "source": source, "target": target})
    return out
