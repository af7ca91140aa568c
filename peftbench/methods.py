"""The method contract. A method is a folder methods/<name>/ with method.yaml and method.py; the DAG
finds it by globbing, so adding a folder adds a row to the report. method.py defines:

    attach(model, hp) -> model        only the method's parameters have requires_grad=True
    task_state(model) -> {name: Tensor}   what is stored per task (the storage column)
    load(model, state, hp) -> model   base model + stored task state -> ready to evaluate
    merge(model) -> model             optional: fold into the base weights (no extra latency)
    switch(model, old_state, new_state, hp) -> model
                                      optional: swap a loaded model from one task's state to another's in
                                      place (e.g. merged LoRA: W - BA + B'A'); default: `copy_task_state`
                                      when the stored keys are the loaded model's, else the task-switch
                                      measurement rebuilds from the base (peftbench/costs/task_switch.py)

`model` is a transformers causal LM on which the method may wrap or hook modules (peft does both).
`Method` below is the same contract as a typing.Protocol; a method that acts on prompt positions reads
them through `prompt_lengths()`, never through the training loop's internals.
"""

import contextlib
import contextvars
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Protocol, runtime_checkable

import torch
from safetensors.torch import load_file, save_file

from peftbench import io
from peftbench.config import CONTRACT as REQUIRED


@runtime_checkable
class Method(Protocol):
    """What a methods/<name>/method.py module provides (preflight reads it with `ast`; the DAG calls it).
    merge and switch are optional (not part of the protocol): see the module docstring."""

    def attach(self, model: torch.nn.Module, hp: dict) -> torch.nn.Module: ...

    def task_state(self, model: torch.nn.Module) -> dict[str, torch.Tensor]: ...

    def load(self, model: torch.nn.Module, state: dict[str, torch.Tensor], hp: dict) -> torch.nn.Module: ...


# ---- what the shared loop tells a method about the batch it runs --------------------------------------
# Per-row prompt lengths of the batch in a training or validation-loss forward, for methods that act on
# prompt positions only (LoReFT); None outside them (generation: the prefill call is the prompt, later
# calls are generated tokens).
_PROMPT_LENGTHS = contextvars.ContextVar("peftbench_prompt_lengths", default=None)


def prompt_lengths() -> torch.Tensor | None:
    """The running batch's prompt length per row (a LongTensor), or None outside a training forward."""
    return _PROMPT_LENGTHS.get()


@contextlib.contextmanager
def running_prompts(lengths: torch.Tensor | None) -> Iterator[None]:
    """Set by the shared loop around every forward it makes (peftbench.stages.train)."""
    token = _PROMPT_LENGTHS.set(lengths)
    try:
        yield
    finally:
        _PROMPT_LENGTHS.reset(token)


def load_module(method_dir: Path | str) -> ModuleType:
    """Import methods/<name>/method.py as its own module; check it fulfils the contract."""
    path = Path(method_dir) / "method.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (every method directory needs method.py)")
    spec = importlib.util.spec_from_file_location(f"peftbench_method_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [f for f in REQUIRED if not callable(getattr(module, f, None))]
    if missing:
        raise AttributeError(f"{path}: must define {', '.join(missing)} (see peftbench/methods.py)")
    return module


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def save_state(state: dict[str, torch.Tensor], path: Path | str) -> None:
    """Task state -> safetensors (no pickle). Tensors sharing storage (tied weights) are stored once;
    the key kept is the first in order and `load` re-ties."""
    seen, out = set(), {}
    for k, v in state.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        if v.device.type != "meta" and key in seen:
            continue
        seen.add(key)
        out[k] = v.detach().contiguous().cpu()
    with io.atomic_path(path) as tmp:
        save_file(out, str(tmp), metadata={"format": "pt"})


def load_state(path: Path | str) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def check_task_state(state: object, method: str) -> dict[str, torch.Tensor]:
    """What a method's task_state() returns must be {name: tensor} (safetensors stores nothing else): checked on
    the attached model before training, not found by save_state after it."""
    if not isinstance(state, dict):
        raise TypeError(f"methods/{method}/method.py: task_state() returned {type(state).__name__}, not a dict")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise TypeError(
                f"methods/{method}/method.py: task_state() must return {{name: tensor}}; "
                f"{key!r} holds a {type(value).__name__}"
            )
    return state


def state_summary(state: dict[str, torch.Tensor]) -> dict:
    """train.json's account of a task state: how many tensors, their bytes and dtypes."""
    return {
        "stored_tensors": len(state),
        "stored_bytes_tensors": state_bytes(state),
        "stored_dtypes": sorted({str(t.dtype).removeprefix("torch.") for t in state.values()}),
    }


def state_bytes(state: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in state.values())


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def refuse_save_pretrained(model: torch.nn.Module, method: str, modules: str) -> torch.nn.Module:
    """A model carrying modules transformers does not know (adapters, hooks): its `save_pretrained` would write
    a checkpoint that `from_pretrained` loads without them, giving other logits with no error. Refuse instead."""

    def save_pretrained(*args, **kwargs):
        raise NotImplementedError(
            f"{method}: save_pretrained would write a checkpoint that transformers loads without the {modules} "
            f"(other logits, no error). Use the run's task_state.safetensors with peftbench.load_run, or "
            f"`python -m peftbench.export RUN OUT`, which says what it can write"
        )

    model.save_pretrained = save_pretrained
    return model


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def trained_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The task state of a method that stores exactly its trainable parameters."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def load_trained_state(model: torch.nn.Module, state: dict[str, torch.Tensor], method: str) -> torch.nn.Module:
    """Load a `trained_state` into a freshly attached model; the keys must match exactly."""
    expected = set(trained_state(model))
    if set(state) != expected:
        raise ValueError(
            f"{method} state does not match hp: missing {sorted(expected - set(state))}, "
            f"unexpected {sorted(set(state) - expected)}"
        )
    model.load_state_dict(state, strict=False)  # strict on our keys above; the rest is the base
    return model.eval()


def _few(keys, n=3):
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def copy_mismatch(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """Why `copy_task_state` cannot move `model` to `state` (None when it can): a key the loaded model lacks
    (a merged method's adapter keys, once merged away), or a tensor of another shape."""
    from peft import PeftModel, get_peft_model_state_dict

    if not state and not isinstance(model, PeftModel):  # zero-shot: nothing stored, nothing to swap
        return None
    if isinstance(model, PeftModel):
        expected = get_peft_model_state_dict(model)
        if set(state) != set(expected):
            return (
                f"task state does not match the loaded adapter: missing [{_few(set(expected) - set(state))}], "
                f"unexpected [{_few(set(state) - set(expected))}]"
            )
    else:
        expected = model.state_dict()
        unexpected = set(state) - set(expected)
        if unexpected:
            return f"task state has keys the loaded model lacks: [{_few(unexpected)}]"
    shapes = [k for k, v in state.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if shapes:
        return f"task state has tensors of another shape than the loaded model's: [{_few(shapes)}]"
    return None


def copy_task_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Swap in another task's state by copying its tensors into the loaded model, in place: the default
    `switch` for a method whose stored keys are the model's own parameter names (full, houlsby, ...) or
    a peft model's (its adapter weights, not merged). The keys must match; nothing else is touched."""
    from peft import PeftModel, set_peft_model_state_dict

    problem = copy_mismatch(model, state)
    if problem:
        raise ValueError(problem)
    if not state and not isinstance(model, PeftModel):
        return model
    if isinstance(model, PeftModel):
        set_peft_model_state_dict(model, state)
        return model
    with torch.no_grad():
        model.load_state_dict(state, strict=False)  # copies into the existing tensors (tied ones stay tied)
    return model


def switch(
    module: ModuleType,
    model: torch.nn.Module,
    old_state: dict[str, torch.Tensor],
    new_state: dict[str, torch.Tensor],
    hp: dict,
) -> torch.nn.Module:
    """Switch a model that `module.load` (or an earlier switch) set up for old_state to new_state, without
    reloading the base ("weights in adapter layers can be swapped out as needed", Hu et al. 2021, Sec. 4.1)."""
    if callable(getattr(module, "switch", None)):
        return module.switch(model, old_state, new_state, hp)
    return copy_task_state(model, new_state)
