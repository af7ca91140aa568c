"""LoRA (Hu et al. 2021, Sec. 4.1): h = W0 x + (alpha/r) B A x, A ~ Kaiming, B = 0, so the model is
unchanged at initialisation. peft's LoraConfig implements exactly this; we store only A and B."""
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict


def _config(hp):
    return LoraConfig(r=hp["r"], lora_alpha=hp["alpha"], lora_dropout=hp.get("dropout", 0.0),
                      target_modules=list(hp["target_modules"]), bias="none", task_type="CAUSAL_LM")


def attach(model, hp):
    return get_peft_model(model, _config(hp))      # freezes the base; only lora_A / lora_B train


def task_state(model):
    return get_peft_model_state_dict(model)


def load(model, state, hp):
    model = attach(model, hp)
    result = set_peft_model_state_dict(model, state)
    if result.unexpected_keys:
        raise ValueError(f"LoRA state has unexpected keys {result.unexpected_keys}")
    return merge(model) if hp.get("merge", True) else model.eval()


def merge(model):
    """W0 <- W0 + (alpha/r) B A: deployment with no extra latency (Sec. 4.1)."""
    return model.merge_and_unload().eval()
