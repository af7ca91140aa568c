"""(IA)^3 (Liu et al. 2022, Sec. 3.3): learned vectors rescale the keys, the values and the FFN's inner
activation, softmax(Q (l_k * K)^T / sqrt(d_k)) (l_v * V) and (l_ff * gamma(W_1 x)) W_2, all initialised
to ones, so the model is the base model at initialisation. peft's IA3Config implements exactly this:
l_k, l_v scale the outputs of k_proj, v_proj; l_ff scales the input of down_proj (a feedforward module).
We store only the vectors; for deployment they fold into the weights (Sec. 3.3, no added latency).
`fused_qkv: c_attn` (GPT-2) splits the fused q/k/v projection first, so that [c_attn.k, c_attn.v] scales the keys
and values alone (Sec. 3.3: l_k, l_v; not the queries, which a vector on the whole c_attn would also rescale)."""

import torch
from peft import IA3Config, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

from peftbench.methods import copy_task_state
from peftbench.model import fused_qkv


def _config(hp):
    return IA3Config(
        task_type="CAUSAL_LM",
        target_modules=list(hp["target_modules"]),
        feedforward_modules=list(hp["feedforward_modules"]),
        init_ia3_weights=True,
    )


def attach(model, hp):
    if hp.get("fused_qkv"):
        fused_qkv.split(model, hp["fused_qkv"])
    return get_peft_model(model, _config(hp))  # freezes the base; only the ia3_l vectors train


def task_state(model):
    return get_peft_model_state_dict(model)


def load(model, state, hp):
    model = attach(model, hp)
    result = set_peft_model_state_dict(model, state)
    if result.unexpected_keys:
        raise ValueError(f"(IA)^3 state has unexpected keys {result.unexpected_keys}")
    return merge(model) if hp.get("merge", True) else model.eval()


def merge(model):
    """W_k <- diag(l_k) W_k, W_v <- diag(l_v) W_v, W_2 <- W_2 diag(l_ff): a plain model again."""
    return fused_qkv.fuse(model.merge_and_unload()).eval()


def switch(model, old_state, new_state, hp):
    """Folded vectors swapped in place: W_k <- diag(l_k' / l_k) W_k (rows; W_v alike), W_2 <- W_2 diag(l_ff' / l_ff)
    (columns), the same broadcast peft's merge uses. Unmerged (merge: false), only the vectors are swapped."""
    if not hp.get("merge", True):
        return copy_task_state(model, new_state)
    if old_state.keys() != new_state.keys():
        raise ValueError(f"(IA)^3 states scale different modules: {sorted(old_state.keys() ^ new_state.keys())}")
    with torch.no_grad():
        for key, l_old in old_state.items():
            W, bias = fused_qkv.weight(model, key.removesuffix(".ia3_l").removeprefix("base_model.model."))
            ratio = new_state[key] / l_old  # (out, 1) scales rows of W (out x in); (1, in) columns (FFN)
            W.mul_(ratio)
            if bias is not None and ratio.shape[1] == 1:  # output scaling scales the bias
                bias.mul_(ratio.reshape(bias.shape))
    return model
