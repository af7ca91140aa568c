"""GPT-2's fused attention input projection c_attn (one Conv1D, d -> 3d: [q | k | v]) as its three d x d
projections, so that a method can adapt W_q and W_v alone, as the LoRA paper does (Hu et al. 2021 Sec. 4.2:
"W_q, W_k, W_v ... each a single matrix of dimension d_model x d_model"; its code adapts the fused layer with
loralib's MergedLinear(enable_lora=[True, False, True]): separate low-rank updates on the q and v slices).

    split(model, "c_attn")   c_attn -> SplitQKV(q, k, v): nn.Linear each; same function, same parameters
    fuse(model)              SplitQKV -> one Conv1D again (after a merge: the base model's shape and latency)
    weight(model, name)      W (out x in) of "<...>.c_attn.q" whether split or fused back: for in-place task switches
"""

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

SLICES = ("q", "k", "v")  # c_attn's output order


class SplitQKV(nn.Module):
    """q, k, v as three nn.Linear whose outputs are concatenated in c_attn's order."""

    def __init__(self, fused):
        super().__init__()
        d = fused.weight.shape[0]
        w, b = fused.weight, fused.bias  # Conv1D: y = x W + b, W is (in, out)
        if w.shape[1] != 3 * d:
            raise ValueError(f"fused q/k/v projection: expected a (d, 3d) weight, got {tuple(w.shape)}")
        self.q, self.k, self.v = (nn.Linear(d, d, device=w.device, dtype=w.dtype) for _ in SLICES)
        with torch.no_grad():
            for i, proj in enumerate((self.q, self.k, self.v)):
                proj.weight.copy_(w[:, i * d : (i + 1) * d].t())
                proj.bias.copy_(b[i * d : (i + 1) * d])

    def forward(self, x):
        return torch.cat([self.q(x), self.k(x), self.v(x)], dim=-1)


def _matches(name, suffix):
    return name == suffix or name.endswith("." + suffix)


def split(model, suffix="c_attn"):
    """Replace every Conv1D whose name ends with `suffix` by its SplitQKV; an error if none matches."""
    found = [n for n, m in model.named_modules() if _matches(n, suffix) and isinstance(m, Conv1D)]
    if not found:
        raise ValueError(f"fused_qkv: no Conv1D module of the model is named '{suffix}'")
    for name in found:
        parent, child = name.rsplit(".", 1)
        setattr(model.get_submodule(parent), child, SplitQKV(model.get_submodule(name)))
    return model


def fuse(model):
    """Every SplitQKV whose q, k, v are plain nn.Linear again (a merged adapter) -> one Conv1D; a no-op
    without any. Exact: the same numbers, only stored side by side."""
    for name, module in list(model.named_modules()):
        if isinstance(module, SplitQKV) and all(type(getattr(module, s)) is nn.Linear for s in SLICES):
            d = module.q.in_features
            conv = Conv1D(3 * d, d).to(module.q.weight.device, module.q.weight.dtype)
            with torch.no_grad():
                conv.weight.copy_(torch.cat([getattr(module, s).weight.t() for s in SLICES], dim=1))
                conv.bias.copy_(torch.cat([getattr(module, s).bias for s in SLICES]))
            parent, child = name.rsplit(".", 1)
            setattr(model.get_submodule(parent), child, conv)
    return model


def weight(model, name):
    """(W, b) of the module `name` as views in the (out, in) orientation of nn.Linear, for in-place updates.
    `name` may be a slice "<...>.c_attn.q" of a c_attn that has been fused back into one Conv1D."""
    parent, _, child = name.rpartition(".")
    try:
        module = model.get_submodule(name)
    except AttributeError:
        module = None
    if module is None and child in SLICES and isinstance(model.get_submodule(parent), Conv1D):
        fused = model.get_submodule(parent)
        d, i = fused.weight.shape[0], SLICES.index(child)
        return fused.weight[:, i * d : (i + 1) * d].T, fused.bias[i * d : (i + 1) * d]
    if isinstance(module, Conv1D):  # GPT-2 stores W transposed
        return module.weight.T, module.bias
    return module.weight, module.bias
