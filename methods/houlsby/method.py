"""Adapter tuning (Houlsby et al. 2019, Sec. 2.1 / Fig. 2): a bottleneck adapter

    h <- h + W_up f(W_down h)          W_down: d -> m, W_up: m -> d, m << d

on the output of the attention output projection and of the feed-forward output projection, inside each
block, before the block's residual add. Only the adapters and the layer norms train (Fig. 2 caption).
`placement: mlp_only` is Adapter-L (Hu et al. 2021, Sec. 5.1, after Lin et al. 2020): one adapter per block,
after the MLP, whose input goes through its own LayerNorm: h + W_up f(W_down LN(h)).

Written natively: peft has no bottleneck adapter and the `adapters` library pins transformers 4.x."""
from torch import nn
from transformers.activations import ACT2FN

from peftbench.methods import freeze, load_trained_state, trained_state

PLACEMENTS = {"houlsby": ("attention", "mlp"), "mlp_only": ("mlp",)}


class Adapter(nn.Module):
    def __init__(self, d, m, activation="gelu", init_std=1e-2, layer_norm=False):
        super().__init__()
        self.norm = nn.LayerNorm(d) if layer_norm else nn.Identity()   # Adapter-L only: LN on the adapter input (Lin et al. 2020)
        self.down, self.act, self.up = nn.Linear(d, m), ACT2FN[activation], nn.Linear(m, d)
        # Near-identity init (Sec. 3.6): W_down ~ N(0, 1e-2^2) truncated at 2 std. The paper draws W_up the same
        # way; we set W_up = 0 (as LoRA's B) so the adapted model is exactly the base model at initialisation.
        nn.init.trunc_normal_(self.down.weight, std=init_std, a=-2 * init_std, b=2 * init_std)
        for t in (self.down.bias, self.up.weight, self.up.bias):
            nn.init.zeros_(t)

    def forward(self, h):
        return h + self.up(self.act(self.down(self.norm(h))))          # h + W_up f(W_down h)


class Adapted(nn.Module):
    """A frozen output projection followed by its adapter; the block's residual add comes after (Fig. 2)."""

    def __init__(self, base_layer, adapter):
        super().__init__()
        self.base_layer, self.adapter = base_layer, adapter

    def forward(self, x):
        return self.adapter(self.base_layer(x))


def _matches(name, pattern):
    return name == pattern or name.endswith("." + pattern)


def attach(model, hp):
    freeze(model)
    placement = hp.get("placement", "houlsby")
    if placement not in PLACEMENTS:
        raise ValueError(f"houlsby: placement must be one of {sorted(PLACEMENTS)}, got {placement!r}")
    patterns = [hp["target_modules"][where] for where in PLACEMENTS[placement]]
    targets = [n for n, _ in model.named_modules() if any(_matches(n, p) for p in patterns)]
    if not targets:
        raise ValueError(f"houlsby: no module of the model matches target_modules {patterns}")
    d = model.config.hidden_size                      # both projections map back to the residual stream
    for name in targets:
        base = model.get_submodule(name)
        adapter = Adapter(d, hp["size"], hp.get("activation", "gelu"), hp.get("init_std", 1e-2),
                          layer_norm=placement == "mlp_only").to(base.weight.device, base.weight.dtype)
        parent, child = name.rsplit(".", 1)
        setattr(model.get_submodule(parent), child, Adapted(base, adapter))
    for name, module in model.named_modules():        # Fig. 2: the layer norms train too
        if any(_matches(name, p) for p in hp.get("train_norms", [])):
            module.requires_grad_(True)
    return model


def task_state(model):
    """Adapter weights and layer-norm weights: exactly the trained parameters."""
    return trained_state(model)


def load(model, state, hp):
    return load_trained_state(attach(model, hp), state, "houlsby")
