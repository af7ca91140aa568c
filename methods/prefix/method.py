"""Prefix tuning (Li & Liang 2021, Sec. 4): every layer attends to n trainable key/value vectors in front
of the input, h_i = LM(z_i, h_<i) with h_i = P[i,:] for the prefix positions i < n. Sec. 4.3: P is
trained through a reparameterisation P[i,:] = MLP(P'[i,:]) for stability; after training only P is
kept, so storage and inference see the prefix alone. peft's PrefixTuningConfig implements both
(with grouped-query attention the prefix has the key/value width, n_kv_heads x head_dim)."""

from peft import PrefixTuningConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

from peftbench.model.peft_compat import fix_generation


def attach(model, hp):
    """Training: P' (n x kv_dim) -> Linear(kv_dim, H) -> tanh -> Linear(H, layers * 2 * kv_dim) = P."""
    config = PrefixTuningConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=hp["num_virtual_tokens"],
        prefix_projection=True,
        encoder_hidden_size=hp["encoder_hidden_size"],
    )
    return fix_generation(get_peft_model(model, config))  # base frozen; P' and the MLP train


def task_state(model):
    """P = MLP(P'), computed once (peft's get_prompt_embedding_to_save): n x (layers * 2 * kv_dim)."""
    return get_peft_model_state_dict(model)  # {"prompt_embeddings": P}


def load(model, state, hp):
    """Inference: P is the embedding itself (no projection, no MLP), used as the layers' KV prefix."""
    config = PrefixTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=hp["num_virtual_tokens"], prefix_projection=False, inference_mode=True
    )
    model = fix_generation(get_peft_model(model, config))
    set_peft_model_state_dict(model, state)
    return model.requires_grad_(False).eval()
