"""The papers' parameter and storage figures that peftbench.costs.paper_scale reproduces: the figures, each
with the setting the paper states, how we count it and why, are data in paper_figures.yaml; here are the
papers' closed forms the YAML names (each figure's `formula`), the one method with no methods/ folder
(BitFit), and the loading. The sources are listed in paper_figures.yaml's header."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    import torch


# ---- the papers' closed forms: each returns (value, the equation with the numbers substituted) ----
def lora(d: int, r: int, matrices: int) -> tuple[int, str]:
    """LoRA Sec. 5.1: |Theta| = 2 x L_LoRA x d_model x r, L_LoRA = the number of adapted d x d matrices."""
    return 2 * matrices * d * r, f"2 × {matrices} × {d} × {r}"


def lora_rect(r: int, layers: int, shapes: list[tuple[int, int]]) -> tuple[int, str]:
    """LoRA on non-square matrices: A (r x d_in) + B (d_out x r) = r (d_in + d_out) per matrix and layer."""
    per_layer = sum(r * (i + o) for i, o in shapes)
    return layers * per_layer, f"{layers} × {r} × (" + " + ".join(f"{i}+{o}" for i, o in shapes) + ")"


def adapter(d: int, r: int, adapters: int, layer_norms: int) -> tuple[int, str]:
    """LoRA Sec. 5.1: |Theta| = L_Adpt x (2 d_model r + r + d_model) + 2 x L_LN x d_model."""
    return adapters * (
        2 * d * r + r + d
    ) + 2 * layer_norms * d, f"{adapters} × (2 × {d} × {r} + {r} + {d}) + 2 × {layer_norms} × {d}"


def houlsby(d: int, m: int, layers: int, layer_norms: int) -> tuple[int, str]:
    """Houlsby Sec. 2.1: 2md + d + m per adapter, two per layer, plus the trained layer norms (2d each)."""
    return 2 * layers * (
        2 * m * d + d + m
    ) + 2 * d * layer_norms, f"2 × {layers} × (2 × {m} × {d} + {d} + {m}) + 2 × {d} × {layer_norms}"


def prelayer(d: int, layers: int, lp: int, li: int) -> tuple[int, str]:
    """LoRA Sec. 5.1 (PreLayer): |Theta| = L x d_model x (l_p + l_i), the activations after every layer."""
    return layers * d * (lp + li), f"{layers} × {d} × ({lp} + {li})"


def preembed(d: int, lp: int, li: int) -> tuple[int, str]:
    """LoRA Sec. 5.1 (PreEmbed): |Theta| = d_model x (l_p + l_i), the special tokens' embeddings."""
    return d * (lp + li), f"{d} × ({lp} + {li})"


def kv_prefix(d: int, layers: int, n: int) -> tuple[int, str]:
    """Li & Liang Sec. 4.2-4.3, as released and as peft stores it: P = a key and a value vector per layer
    for each of the n prefix positions."""
    return n * layers * 2 * d, f"{n} × {layers} × 2 × {d}"


def gpt2_block(d: int) -> int:
    """One GPT-2 block: W_qkv 3d^2+3d, W_o d^2+d, W_fc 4d^2+4d, W_proj 4d^2+d, two LayerNorms 4d."""
    return 12 * d * d + 13 * d


def gpt2(vocab: int, positions: int, d: int, layers: int, tied: bool) -> tuple[int, str]:
    """Token and position embeddings, L blocks, final LayerNorm (+ an untied LM head)."""
    total = vocab * d + positions * d + layers * gpt2_block(d) + 2 * d + (0 if tied else vocab * d)
    head = "" if tied else f" + {vocab}·{d}"
    return total, f"({vocab} + {positions})·{d} + {layers}·(12·{d}² + 13·{d}) + 2·{d}{head}"


def top_blocks(d: int, k: int) -> tuple[int, str]:
    """FT-Top2 (Li & Liang Sec. 5.2): the top k blocks; plus the final LayerNorm, which sits above them."""
    return k * gpt2_block(d) + 2 * d, f"{k} × (12·{d}² + 13·{d}) + 2·{d}"


def gpt2_biases(d: int, layers: int) -> tuple[int, str]:
    """Every bias vector of a GPT-2 block: W_qkv 3d, W_o d, W_fc 4d, W_proj d, LayerNorms 2d = 11d; + ln_f."""
    return layers * 11 * d + d, f"{layers} × 11 × {d} + {d}"


def loreft(d: int, r: int, layers: int) -> tuple[int, str]:
    """ReFT Sec. 3.1: per intervention R (r x d), W (r x d), b (r): 2rd + r."""
    return layers * (2 * r * d + r), f"{layers} × (2 × {r} × {d} + {r})"


# ---- methods with no directory under methods/ --------------------------------------------------------
def bitfit(model: torch.nn.Module, hp: dict) -> torch.nn.Module:
    """Bias-only / BitFit (Zaken et al. 2021; LoRA Sec. 5.1): every weight frozen except the bias vectors."""
    from peftbench.methods import freeze

    freeze(model)
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.requires_grad_(True)
    return model


def bitfit_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from peftbench.methods import trained_state

    return trained_state(model)


INLINE = {"bitfit": (bitfit, bitfit_state)}  # name -> (attach, task_state), the methods/ contract


@dataclass(frozen=True)
class Figure:
    """One printed figure (paper_figures.yaml's header says what each field holds)."""

    source: str
    model: str
    method: str
    paper: str
    setting: str
    count: str | None
    hp: dict = field(default_factory=dict)
    formula: tuple | None = None  # (value, the equation with the numbers substituted) of the paper's closed form
    split_qkv: bool = False
    of: str = "base"
    key: str = ""
    note: str = ""


@dataclass(frozen=True)
class Ratio:
    """A ratio of two figures' checkpoint bytes (named by their `key`)."""

    source: str
    model: str
    method: str
    paper: str
    setting: str
    numerator: str
    denominator: str
    note: str = ""


FORMS = {  # the closed forms a figure's `formula` may name
    f.__name__: f
    for f in (lora, lora_rect, adapter, houlsby, prelayer, preembed, kv_prefix, gpt2, top_blocks, gpt2_biases, loreft)
}


def _figure(entry: dict, phrases: dict[str, str]) -> Figure:
    """A figure of the YAML: the phrases named in its setting filled in, its formula evaluated."""
    entry = dict(entry)
    for name, text in phrases.items():
        entry["setting"] = entry["setting"].replace("{" + name + "}", text)
    if "formula" in entry:
        [(form, args)] = entry["formula"].items()
        entry["formula"] = FORMS[form](**args)
    return Figure(**entry)


def load(path: Path = Path(__file__).with_name("paper_figures.yaml")) -> tuple[list[Figure], list[Ratio]]:
    """The figures and ratios of paper_figures.yaml."""
    data = yaml.safe_load(path.read_text())
    return [_figure(c, data["phrases"]) for c in data["figures"]], [Ratio(**r) for r in data["ratios"]]


FIGURES, RATIOS = load()


def counted_methods() -> list[str]:
    """The methods/<name> folders whose own code counts a figure (what the paper_scale rule depends on)."""
    return sorted({c.count for c in FIGURES if c.count and c.count not in INLINE})
