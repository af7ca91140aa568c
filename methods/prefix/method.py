"""Prefix tuning (Li & Liang 2021, Sec. 4): every layer attends to n trainable key/value vectors in front
of the input, h_i = LM(z_i, h_<i) with h_i = P[i,:] for the prefix positions i < n. Sec. 4.3: P is
trained through a reparameterisation P[i,:] = MLP(P'[i,:]) for stability; after training only P is
kept, so storage and inference see the prefix alone. peft's PrefixTuningConfig implements both
(with grouped-query attention the prefix has the key/value width, n_kv_heads x head_dim)."""
import functools

from peft import PrefixTuningConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict


def attach(model, hp):
    """Training: P' (n x kv_dim) -> Linear(kv_dim, H) -> tanh -> Linear(H, layers * 2 * kv_dim) = P."""
    config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=hp["num_virtual_tokens"],
                                prefix_projection=True, encoder_hidden_size=hp["encoder_hidden_size"])
    return _fix_generation(get_peft_model(model, config))    # base frozen; P' and the MLP train


def task_state(model):
    """P = MLP(P'), computed once (peft's get_prompt_embedding_to_save): n x (layers * 2 * kv_dim)."""
    return get_peft_model_state_dict(model)                  # {"prompt_embeddings": P}


def load(model, state, hp):
    """Inference: P is the embedding itself (no projection, no MLP), used as the layers' KV prefix."""
    config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=hp["num_virtual_tokens"],
                                prefix_projection=False, inference_mode=True)
    model = _fix_generation(get_peft_model(model, config))
    set_peft_model_state_dict(model, state)
    return model.requires_grad_(False).eval()


def _fix_generation(model):
    """transformers 5.24 renamed generate's `past_key_values` to `cache`; peft 0.21.2 still reads the old
    name, so its prefix went nowhere and generation ran the bare base model. We show peft the cache
    under the old name and hand its prefix-filled cache back under the new one."""
    peft_prepare, base_prepare = model.prepare_inputs_for_generation, model.base_model_prepare_inputs_for_generation

    def base_prepare_old_name(*args, **kwargs):
        inputs = base_prepare(*args, **kwargs)
        inputs["past_key_values"] = inputs.pop("cache", None)
        return inputs

    @functools.wraps(peft_prepare)
    def prepare(*args, **kwargs):
        model.base_model_prepare_inputs_for_generation = base_prepare_old_name    # for this call only
        try:
            inputs = peft_prepare(*args, **kwargs)
        finally:
            model.base_model_prepare_inputs_for_generation = base_prepare
        inputs["cache"] = inputs.pop("past_key_values")
        return inputs

    model.prepare_inputs_for_generation = prepare
    return model
