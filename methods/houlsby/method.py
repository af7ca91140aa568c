"""Adapter tuning (Houlsby et al. 2019, Sec. 2.1 / Fig. 2): a bottleneck adapter

    h <- h + W_up f(W_down h)          W_down: d -> m, W_up: m -> d, m << d

on the output of the attention output projection and of the feed-forward output projection, inside each
block, before the block's residual add. Only the adapters and the layer norms train (Fig. 2 caption).
Other placements, one adapter per block:
  mlp_only       after the MLP's output projection, before the residual add. With layer_norm: false,
                 bias: false, activation: tanh it is LLM-Adapters' series adapter ("Adapter-S" of ReFT Table 1;
                 their peft fork's bottleneck "output_adapter" on down_proj, bottleneck 256).
  block_output   on the block's output, after the MLP's residual add, with a LayerNorm on the adapter input and
                 ReLU: Adapter-L (Hu et al. 2021 Sec. 5.1, after Lin et al. 2020), h + W_up ReLU(W_down LN(h)),
                 as Li & Liang's adapter baseline (adapter_design 1) that LoRA Table 3's Adapter-L rows quote.
                 target_modules.block names the block list (GPT-2: transformer.h; Llama: model.layers).

Written natively: peft has no bottleneck adapter and the `adapters` library pins transformers 4.x. A run exports
to adapters' own format (`python -m peftbench.export`), where it gives the same logits (tests/test_export.py)."""

from torch import nn
from transformers.activations import ACT2FN

from peftbench.methods import freeze, load_trained_state, refuse_save_pretrained, trained_state

PLACEMENTS = {"houlsby": ("attention", "mlp"), "mlp_only": ("mlp",), "block_output": ("block",)}


class Adapter(nn.Module):
    def __init__(self, d, m, activation="gelu", init_std=1e-2, layer_norm=False, bias=True):
        super().__init__()
        self.norm = (
            nn.LayerNorm(d) if layer_norm else nn.Identity()
        )  # Adapter-L only: LN on the adapter input (Lin et al. 2020)
        self.down, self.act, self.up = nn.Linear(d, m, bias=bias), ACT2FN[activation], nn.Linear(m, d, bias=bias)
        # Near-identity init (Sec. 3.6): W_down ~ N(0, 1e-2^2) truncated at 2 std. The paper draws W_up the same
        # way; we set W_up = 0 (as LoRA's B) so the adapted model is exactly the base model at initialisation.
        nn.init.trunc_normal_(self.down.weight, std=init_std, a=-2 * init_std, b=2 * init_std)
        for t in (self.down.bias, self.up.weight, self.up.bias):
            if t is not None:
                nn.init.zeros_(t)

    def forward(self, h):
        return h + self.up(self.act(self.down(self.norm(h))))  # h + W_up f(W_down h)


class Adapted(nn.Module):
    """A frozen output projection followed by its adapter; the block's residual add comes after (Fig. 2)."""

    def __init__(self, base_layer, adapter):
        super().__init__()
        self.base_layer, self.adapter = base_layer, adapter

    def forward(self, x):
        return self.adapter(self.base_layer(x))


def _after_block(block, args, output):
    """Forward hook: the adapter on the block's output hidden states (after its residual adds)."""
    if isinstance(output, tuple):
        return (block.adapter(output[0]), *output[1:])
    return block.adapter(output)


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
    d = model.config.hidden_size  # both projections map back to the residual stream
    weight = next(model.parameters())

    def adapter():
        return Adapter(
            d,
            hp["size"],
            hp.get("activation", "gelu"),
            hp.get("init_std", 1e-2),
            layer_norm=hp.get("layer_norm", placement != "houlsby"),
            bias=hp.get("bias", True),
        ).to(weight.device, weight.dtype)

    for name in targets:
        if placement == "block_output":  # every block of the list, e.g. transformer.h.0, .1, ...
            for block in model.get_submodule(name):
                block.adapter = adapter()
                block.register_forward_hook(_after_block)
            continue
        parent, child = name.rsplit(".", 1)
        setattr(model.get_submodule(parent), child, Adapted(model.get_submodule(name), adapter()))
    for name, module in model.named_modules():  # Fig. 2: the layer norms train too
        if any(_matches(name, p) for p in hp.get("train_norms", [])):
            module.requires_grad_(True)
    return refuse_save_pretrained(model, "houlsby", "adapters")


def task_state(model):
    """Adapter weights and layer-norm weights: exactly the trained parameters."""
    return trained_state(model)


def load(model, state, hp):
    return load_trained_state(attach(model, hp), state, "houlsby")
