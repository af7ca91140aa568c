"""A base model with a method attached or loaded, in the dtype and on the device a profile asks for: what every job
(fine-tuning, evaluation, the search's criterion, forgetting) and `peftbench.load_run` build a model with.

    method_model: base weights (dtype) -> seeded attach (training) or load (a stored task state) -> place -> device
    place:        every weight in the weights' dtype, the trainable ones fp32 while training (master copy)
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch

from peftbench import methods
from peftbench.model import base_model

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def set_threads(n: int | None) -> None:
    """A job's torch threads (Snakemake's `threads`); None: torch's own default."""
    if n:
        torch.set_num_threads(int(n))


def device(cfg: dict) -> str:
    """The profile's `device`; auto = cuda when a GPU is visible. Asking for cuda without one is an error."""
    wanted = cfg.get("device", "auto")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config: field 'device': cuda requested but no GPU is visible")
    return wanted


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def weights_dtype(cfg: dict) -> torch.dtype:
    """The profile's model.dtype: the dtype the base model is loaded in and the task state stored in (fp32)."""
    return DTYPES[cfg["model"].get("dtype", "fp32")]


def place(model: torch.nn.Module, dtype: torch.dtype, training: bool = False) -> torch.nn.Module:
    """Every weight in `dtype`, except, while training, the trainable ones: they stay fp32, the master copy that
    AdamW updates and the fp16 GradScaler unscales (it refuses fp16 gradients), as mixed-precision training keeps
    them (Micikevicius et al. 2018, Sec. 3.1). Once training ends they are rounded to `dtype`: what is stored.
    A parametrised weight (LoReFT's orthogonal R) is then first fixed at its trained value: what is rounded is the
    weight the model computes with, not its parametrisation's input (torch has no bf16 householder product)."""
    if dtype == torch.float32:
        return model  # the default: nothing to cast
    from torch.nn.utils import parametrize

    for module in model.modules():
        if parametrize.is_parametrized(module):
            module.parametrizations.float()  # its input and buffers (orthogonal's base) part of the fp32 weight
            if not training:
                for name in list(module.parametrizations):
                    parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    for p in model.parameters():
        want = torch.float32 if training and p.requires_grad else dtype
        if p.is_floating_point() and p.dtype != want:
            p.data = p.data.to(want)
    return model


def method_model(
    base_dir: Path | str,
    method_spec: dict,
    state: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
    device: str = "cpu",
    base_dropout: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase, ModuleType, int]:
    """Base model + method: attached for training (state=None) or loaded from a task state.
    Seeded before attach: a method's random initialisation (LoRA's A) depends on the seed alone.
    `base_dropout` (training.base_dropout) sets the base model's own dropout before the method's modules exist.
    `dtype` (weights_dtype): the base loads in it and so do the method's modules built by a load; see `place`."""
    model, tok = base_model.load(base_dir, dtype=dtype)
    if base_dropout is not None:
        set_dropout(model, base_dropout)
    methods.seed_everything(seed)
    base_params = sum(p.numel() for p in model.parameters())
    module = methods.load_module(method_spec["dir"])
    hp = method_spec["hyperparameters"]
    model = module.attach(model, hp) if state is None else module.load(model, state, hp)
    return place(model, dtype, training=state is None).to(device), tok, module, base_params


def set_dropout(model: torch.nn.Module, p: float) -> torch.nn.Module:
    """Every dropout of `model` to p: nn.Dropout modules and the attention-dropout floats that sdpa/eager
    attention read at call time (Llama's `attention_dropout`). The LoRA repo's GPT-2 (examples/NLG/src/model.py)
    has no dropout at all, where Hugging Face's GPT-2 config has 0.1 on embeddings, attention and residuals."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = p
    return model


def as_stored(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The task state as stored: its floating tensors in the weights' dtype (integer tensors as they are)."""
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
