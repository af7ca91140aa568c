"""Training from scratch: the base architecture with fresh random weights, every parameter trained and
stored; it is full fine-tuning minus pre-training, so the gap to `full` is what pre-training buys.

The weights are drawn by transformers' own initialisation (`_init_weights`: N(0, initializer_range^2) for
linear and embedding weights, ones for the norms) under the run's seed. `model.init_weights()` would be a
no-op on a loaded model (its tensors are flagged as initialised), so a fresh model is built from the config
and its weights copied in; the loaded model object (generation config, tied head) is kept."""

import copy
from pathlib import Path

from transformers import AutoModelForCausalLM

from peftbench.methods import load_module

full = load_module(Path(__file__).resolve().parent.parent / "full")
task_state, load = full.task_state, full.load  # the whole state dict, stored and loaded as by `full`


def attach(model, hp):
    fresh = AutoModelForCausalLM.from_config(copy.deepcopy(model.config), dtype=model.dtype)
    model.load_state_dict(fresh.state_dict())  # strict: the same architecture, every tensor replaced
    return full.attach(model, hp)  # every parameter trains
