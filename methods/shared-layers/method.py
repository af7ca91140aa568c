"""Shared lower layers, "FT-Top2" (Hu et al. 2021, Sec. 5.1, after Li & Liang 2021): fine-tune only the top k
transformer blocks; the blocks below them are shared by every task, so only the top is stored:

    theta_task = {block_i : i >= L - k} + final norm          (L blocks in all)

The final norm sits between the top block and the head, so it belongs to the top and is trained. The LM
head is frozen: SmolLM2 ties it to the input embedding, so training it would change the shared bottom."""

from peftbench.methods import freeze, load_trained_state, trained_state


def attach(model, hp):
    freeze(model)
    blocks, k = model.get_submodule(hp.get("blocks", "model.layers")), hp["top_blocks"]
    if not 0 <= k <= len(blocks):
        raise ValueError(f"shared-layers: top_blocks={k}, the model has {len(blocks)} blocks")
    for module in [*blocks[len(blocks) - k :], model.get_submodule(hp.get("final_norm", "model.norm"))]:
        module.requires_grad_(True)
    return model


def task_state(model):
    """The top k blocks and the final norm: exactly the trained parameters."""
    return trained_state(model)


def load(model, state, hp):
    return load_trained_state(attach(model, hp), state, "shared-layers")
