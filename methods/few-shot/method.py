"""Few-shot (in-context) prompting: the base model as is, k demonstrations in its context (method.yaml
`prompting.num_fewshot`). Stores nothing per task."""

from peftbench.methods import freeze


def attach(model, hp):
    return freeze(model)


def task_state(model):
    return {}


def load(model, state, hp):
    return freeze(model)
