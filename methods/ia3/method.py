"""(IA)^3 (Liu et al. 2022, Sec. 3.3): learned vectors rescale the keys, the values and the FFN's inner
activation, softmax(Q (l_k * K)^T / sqrt(d_k)) (l_v * V) and (l_ff * gamma(W_1 x)) W_2, all initialised
to ones, so the model is the base model at initialisation. peft's IA3Config implements exactly this:
l_k, l_v scale the outputs of k_proj, v_proj; l_ff scales the input of down_proj (a feedforward module).
We store only the vectors; for deployment they fold into the weights (Sec. 3.3, no added latency)."""
from peft import IA3Config, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict


def _config(hp):
    return IA3Config(task_type="CAUSAL_LM", target_modules=list(hp["target_modules"]),
                     feedforward_modules=list(hp["feedforward_modules"]), init_ia3_weights=True)


def attach(model, hp):
    return get_peft_model(model, _config(hp))      # freezes the base; only the ia3_l vectors train


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
    return model.merge_and_unload().eval()
