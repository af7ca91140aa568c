"""Full fine-tuning: every weight trained, every weight stored per task (one model copy per task)."""


def attach(model, hp):
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def task_state(model):
    return model.state_dict()  # tied weights are stored once by peftbench.methods.save_state


def load(model, state, hp):
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    if unexpected or set(missing) - tied:
        raise ValueError(f"full fine-tuning state does not match the model: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    return model.eval()
