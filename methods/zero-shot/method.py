"""Zero-shot prompting: the base model as is. Stores nothing per task."""

from peftbench.methods import freeze


def attach(model, hp):
    return freeze(model)


def task_state(model):
    return {}


def load(model, state, hp):
    return freeze(model)
