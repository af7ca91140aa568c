"""The papers' own figures that the report sets beside ours, each cited by table.

Numbers are copied from the papers (see /work/shared/DESIGN.md). Each paper row names the method
folders (or a profile's method variants) that play it here; the first one that ran is used. An
ordering is compared on the paper's own task when the profile ran it (config/paper-*.yaml), else on
the closest of ours, and the report says which and why."""

from dataclasses import dataclass

COMMONSENSE = ("boolq", "piqa", "siqa", "hellaswag", "winogrande", "arc-easy", "arc-challenge", "openbookqa")


@dataclass(frozen=True)
class Ordering:
    """A paper's ranking of methods on one setting."""

    source: str  # paper and table
    setting: str  # the paper's model, task and metric
    tasks: tuple  # groups of our tasks, in preference: the paper's own first; a group's scores are averaged
    why: str  # why the stand-in (a later group) is the closest, when the paper's own task did not run
    rows: tuple  # (paper's name, our methods that play it, paper's score)
    models: tuple = ()  # only for these base models (empty: any) ...
    skip_models: tuple = ()  # ... except these


ORDERINGS = [
    Ordering(
        "Hu et al. 2021 (LoRA), Table 3",
        "GPT-2 M on E2E NLG, BLEU",
        (("e2e",), ("summarization",)),
        "E2E is conditional generation scored against a reference, as our summarization task is",
        (
            ("LoRA 0.35M", ("lora",), 70.4),
            ("PreLayer 0.35M", ("prefix",), 69.7),
            ("Adapter-L 11.09M", ("adapter-l-11m",), 68.9),
            ("FT", ("full",), 68.2),
            ("FT-Top2", ("shared-layers",), 68.1),
            ("Adapter-H 11.09M", ("adapter-h", "houlsby"), 67.3),
            ("Adapter-L 0.37M", ("adapter-l-370k",), 66.3),
        ),
        skip_models=("gpt2-large",),
    ),
    Ordering(
        "Hu et al. 2021 (LoRA), Table 3",
        "GPT-2 L on E2E NLG, BLEU",
        (("e2e",),),
        "",
        (
            ("LoRA 0.77M", ("lora",), 70.4),
            ("PreLayer 0.77M", ("prefix",), 70.3),
            ("Adapter-L 0.88M", ("adapter-l-880k",), 69.1),
            ("FT", ("full",), 68.5),
        ),
        models=("gpt2-large",),
    ),
    Ordering(
        "Li & Liang 2021 (Prefix-tuning), Table 2",
        "BART-large on XSum, ROUGE-L",
        (("xsum",), ("summarization",)),
        "our summarization task is XSum-style (the lead sentence as the target)",
        (("FT", ("full",), 37.25), ("Prefix (2%)", ("prefix",), 36.05)),
    ),
    Ordering(
        "Wu et al. 2024 (ReFT), Table 1",
        "LLaMA-7B, eight commonsense reasoning sets, mean accuracy",
        (COMMONSENSE, ("qa",)),
        "question answering over a given context is our nearest task to commonsense QA",
        (("LoReFT", ("loreft",), 80.2), ("LoRA", ("lora",), 74.7)),
    ),
]


@dataclass(frozen=True)
class Budget:
    """A paper's trainable-parameter share (and stored share, where it gives one) for one of our methods."""

    method: str
    source: str
    paper_model: str
    trainable_pct: float
    stored_pct: float | None = None  # % of a full checkpoint the paper reports storing, if it does
    note: str = ""
    models: tuple = ()  # the figure for these base models; () = the default figure


GPT2_M, GPT2_L = 354.92, 774.03  # millions of parameters (LoRA Table 3)
BUDGETS = [  # trainable % = the paper's trainable parameters / its base model's parameters
    Budget("full", "Hu et al. 2021 (LoRA), Table 3", "GPT-2 M (354.92M)", 100.0, 100.0),
    Budget(
        "shared-layers",
        "Hu et al. 2021 (LoRA), Table 3 (FT-Top2)",
        "GPT-2 M (354.92M)",
        100 * 25.19 / GPT2_M,
        note="the top 2 blocks",
    ),
    Budget(
        "houlsby", "Houlsby et al. 2019, Table 1 (adapter size 64)", "BERT-large", 2.1, note="3.6% over sizes 8-256"
    ),
    Budget("adapter-h", "Hu et al. 2021 (LoRA), Table 3 (Adapter-H)", "GPT-2 M (354.92M)", 100 * 11.09 / GPT2_M),
    Budget("adapter-l-11m", "Hu et al. 2021 (LoRA), Table 3 (Adapter-L)", "GPT-2 M (354.92M)", 100 * 11.09 / GPT2_M),
    Budget("adapter-l-370k", "Hu et al. 2021 (LoRA), Table 3 (Adapter-L)", "GPT-2 M (354.92M)", 100 * 0.37 / GPT2_M),
    Budget("adapter-l-880k", "Hu et al. 2021 (LoRA), Table 3 (Adapter-L)", "GPT-2 L (774.03M)", 100 * 0.88 / GPT2_L),
    Budget(
        "lora",
        "Hu et al. 2021 (LoRA), Table 3; storage Sec. 4.2",
        "GPT-2 M (354.92M)",
        100 * 0.35 / GPT2_M,
        100 * 35e6 / 350e9,
        note="r=4 on W_q, W_v. Storage: GPT-3 350 GB -> 35 MB",
    ),
    Budget("lora", "Hu et al. 2021 (LoRA), Table 3", "GPT-2 L (774.03M)", 100 * 0.77 / GPT2_L, models=("gpt2-large",)),
    Budget("lora", "Wu et al. 2024 (ReFT), Table 1", "LLaMA-7B", 0.826, models=("llama-7b",)),
    Budget(
        "prefix",
        "Li & Liang 2021 (Prefix-tuning), Sec. 1 / Table 1",
        "GPT-2 M (E2E)",
        0.1,
        0.1,
        note="the paper counts the prefix kept after training; the MLP reparameterisation is trained too",
    ),
    Budget(
        "prefix",
        "Hu et al. 2021 (LoRA), Table 3 (PreLayer)",
        "GPT-2 M (354.92M)",
        100 * 0.35 / GPT2_M,
        models=("gpt2-medium",),
    ),
    Budget(
        "prefix",
        "Hu et al. 2021 (LoRA), Table 3 (PreLayer)",
        "GPT-2 L (774.03M)",
        100 * 0.77 / GPT2_L,
        models=("gpt2-large",),
    ),
    Budget("loreft", "Wu et al. 2024 (ReFT), Table 1", "LLaMA-7B", 0.031),
]


def budget_for(method, model):
    """The paper's figure for `method` on our base `model`: the model's own entry, else the default."""
    entries = [b for b in BUDGETS if b.method == method]
    return next((b for b in entries if model in b.models), next((b for b in entries if not b.models), None))


def applies(ordering, model):
    return (not ordering.models or model in ordering.models) and model not in ordering.skip_models
