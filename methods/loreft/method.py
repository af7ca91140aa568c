"""LoReFT (Wu et al. 2024, "ReFT: Representation Finetuning for Language Models", Sec. 3.1, eq. 2):

    Phi(h) = h + R^T (W h + b - R h)        R in R^{r x d} with orthonormal rows, W in R^{r x d}, b in R^r

applied to the residual stream (the output of the chosen decoder layers) at the first p and the last
s positions of the PROMPT only ("f7+l7", Sec. 4). Generated tokens are never intervened on: the
prompt's intervened states reach them through the KV cache, so decoding costs nothing extra.

Native implementation with forward hooks (pyreft/pyvene do not run on current transformers; a run exports to
pyreft's own format, `python -m peftbench.export`, where it gives the same logits: tests/test_export.py):
  * a forward pre-hook on the decoder stack (model.model) decides, once per forward, which positions
    are intervened on:
      - training / validation loss (peftbench.methods.prompt_lengths() set by the shared loop): rows are right-padded, row
        i's prompt is positions [0, prompt_len_i);
      - prefill (the KV cache is empty): the prompt is every non-pad position of the attention mask
        (lm-eval left-pads its generation batches), or every position without a mask;
      - anything else (a decoding step on a non-empty cache): no intervention;
  * a forward hook on each chosen decoder layer replaces its output h by Phi(h) at those positions
    (torch.where: every other position is returned bit for bit).
Positions: the first `first` and the last `last` prompt tokens; when a prompt is shorter than
first + last the two ranges overlap and each position is intervened on once.
"""

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import orthogonal

from peftbench.methods import freeze, prompt_lengths, refuse_save_pretrained

ATTR = "loreft"  # model.loreft: the ModuleDict of interventions (so .to() / .parameters() see them)


class LoReFTIntervention(nn.Module):
    """Phi(h) = h + R^T (W h + b - R h) (eq. 2). R is a Linear(d, r) without bias whose weight (r x d)
    is kept with orthonormal rows by torch's orthogonal parametrisation (as pyreft does); W, b is a
    Linear(d, r). `trainable=False` (loading a stored state) keeps R as a plain, frozen matrix, so the
    stored (materialised) R is used exactly as trained."""

    def __init__(self, d, r, trainable=True):
        super().__init__()
        self.R = nn.Linear(d, r, bias=False)
        nn.init.orthogonal_(self.R.weight)
        if trainable:
            orthogonal(self.R)  # R R^T = I throughout training
        self.W = nn.Linear(d, r)  # W h + b: the learned projected source

    def check_signs(self):
        """torch's householder map (used for a non-square R) keeps column signs as exact +-1 on the diagonal
        of `original`, cast with .int(): their gradient is zero, but any decoupled weight decay shrinks them
        to 0.99.. -> 0 and R collapses to zero. Fail loudly instead (set training.weight_decay: 0)."""
        if not parametrize.is_parametrized(self.R, "weight"):
            return
        signs = self.R.parametrizations.weight.original.detach().diagonal()
        if not bool((signs.abs() == 1).all()):
            raise RuntimeError(
                "loreft: the orthogonal parametrisation's sign diagonal of R was changed (weight "
                "decay on R?): R is no longer orthonormal. Train LoReFT with training.weight_decay: 0"
            )

    def forward(self, h):
        R = self.R.weight.contiguous()  # materialised once per call (r x d); contiguous: the
        # same memory layout (same kernels, same bits) as a loaded R
        delta = self.W(h) - nn.functional.linear(h, R)  # W h + b - R h     (..., r)
        return h + nn.functional.linear(delta, R.t())  # h + R^T (...)     (..., d)


def _layers(model):
    return model.model.layers


def _layer_indices(hp, n_layers):
    spec = hp.get("layers", "all")
    if spec == "all":
        return list(range(n_layers))
    idx = [int(i) for i in spec]
    bad = [i for i in idx if not 0 <= i < n_layers]
    if bad or len(set(idx)) != len(idx) or not idx:
        raise ValueError(
            f"loreft: hyperparameter 'layers': {spec} must be 'all' or distinct indices in [0, {n_layers})"
        )
    return sorted(idx)


def _keys(hp, n_layers):
    """ModuleDict keys: one intervention per layer ('3'), or one per position set ('3_first', '3_last')."""
    if hp.get("share_weights", True):
        return [str(i) for i in _layer_indices(hp, n_layers)]
    return [f"{i}_{part}" for i in _layer_indices(hp, n_layers) for part in ("first", "last")]


def position_masks(valid, first, last):
    """valid: (B, T) bool, the prompt's positions (not necessarily contiguous with the row's start).
    Returns (in_first, in_last) (B, T) bool: the first `first` / last `last` prompt positions of each
    row; a position in both sets is counted in `in_first` only (intervened on once)."""
    valid = valid.bool()
    rank = valid.long().cumsum(1) - 1  # index of each position within its prompt
    length = valid.long().sum(1, keepdim=True)
    in_first = valid & (rank < first)
    in_last = valid & (rank >= length - last) & ~in_first
    return in_first, in_last


def _past_length(cache):
    if cache is None:
        return 0
    if hasattr(cache, "get_seq_length"):
        return int(cache.get_seq_length())
    raise TypeError(f"loreft: unsupported KV cache type {type(cache).__name__} (expected a transformers Cache)")


class _Controller:
    """Per-forward position masks shared by the layer hooks; None = do not intervene."""

    def __init__(self, first, last, interventions):
        self.first, self.last, self.interventions = first, last, interventions
        self.masks = None
        self.enabled = True  # switch for tests / ablations
        self.handles = []

    def pre_hook(self, module, args, kwargs):
        self.masks = None
        if not self.enabled:
            return
        for f in self.interventions.values():
            f.check_signs()
        x = kwargs.get("input_ids", args[0] if args else None)
        if x is None:
            x = kwargs["inputs_embeds"]
        B, T = x.shape[0], x.shape[1]
        lengths = prompt_lengths()
        if lengths is not None:  # training: right-padded, prompt first
            lengths = lengths.to(x.device)
            if lengths.shape != (B,):
                raise ValueError(f"loreft: prompt_lengths() has shape {tuple(lengths.shape)}, batch is {B} rows")
            valid = torch.arange(T, device=x.device)[None, :] < lengths[:, None]
        else:
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            if _past_length(cache) > 0:  # decoding step: generated token(s)
                return
            mask = kwargs.get("attention_mask")
            if mask is None:
                valid = torch.ones(B, T, dtype=torch.bool, device=x.device)
            elif mask.dim() == 2 and mask.shape == (B, T):
                valid = mask.bool()  # lm-eval: left-padded prompts
            else:
                raise ValueError(
                    f"loreft: prefill needs a 2-D (batch, length) attention mask, got shape {tuple(mask.shape)}"
                )
        self.masks = position_masks(valid, self.first, self.last)

    def post_hook(self, module, args, kwargs, output):
        self.masks = None

    def layer_hook(self, interventions):
        """interventions: (for the first positions, for the last positions) (the same module when shared)."""

        def hook(module, args, output):
            if self.masks is None:
                return None
            h = output[0] if isinstance(output, tuple) else output
            in_first, in_last = self.masks
            f_first, f_last = interventions
            if f_first is f_last:
                new = torch.where((in_first | in_last)[..., None], f_first(h), h)
            else:
                new = torch.where(in_first[..., None], f_first(h), torch.where(in_last[..., None], f_last(h), h))
            new = new.to(h.dtype)
            return (new, *output[1:]) if isinstance(output, tuple) else new

        return hook


def _install(model, hp, trainable):
    if hasattr(model, ATTR):
        raise ValueError("loreft: interventions are already attached to this model")
    freeze(model)
    layers = _layers(model)
    d, r = model.config.hidden_size, int(hp.get("rank", 8))
    ref = next(model.parameters())
    interventions = nn.ModuleDict({k: LoReFTIntervention(d, r, trainable) for k in _keys(hp, len(layers))})
    interventions.to(device=ref.device, dtype=ref.dtype)
    if not trainable:
        interventions.requires_grad_(False)
    model.add_module(ATTR, interventions)

    ctl = _Controller(int(hp.get("first", 7)), int(hp.get("last", 7)), interventions)
    ctl.handles.append(model.model.register_forward_pre_hook(ctl.pre_hook, with_kwargs=True))
    ctl.handles.append(model.model.register_forward_hook(ctl.post_hook, with_kwargs=True))
    for i in _layer_indices(hp, len(layers)):
        pair = (
            (interventions[str(i)],) * 2
            if hp.get("share_weights", True)
            else (interventions[f"{i}_first"], interventions[f"{i}_last"])
        )
        ctl.handles.append(layers[i].register_forward_hook(ctl.layer_hook(pair)))
    model._loreft_controller = ctl
    return refuse_save_pretrained(model, "loreft", "interventions (forward hooks)")


def attach(model, hp):
    """Base frozen; trainable: per intervention R (r x d, via the orthogonal parametrisation's
    `original`), W (r x d) and b (r): 2 r d + r parameters."""
    return _install(model, hp, trainable=True)


def task_state(model):
    """Per intervention: the materialised R (orthonormal rows), W and b. Nothing of the parametrisation."""
    state = {}
    for key, f in getattr(model, ATTR).items():
        state[f"{key}.R"] = f.R.weight.detach().clone()
        state[f"{key}.W.weight"] = f.W.weight.detach().clone()
        state[f"{key}.W.bias"] = f.W.bias.detach().clone()
    return state


def load(model, state, hp):
    return _set_state(_install(model, hp, trainable=False), state, hp)


def switch(model, old_state, new_state, hp):
    """Another task: copy its R, W, b into the installed interventions (the hooks stay)."""
    return _set_state(model, new_state, hp)


def _set_state(model, state, hp):
    interventions = getattr(model, ATTR)
    expected = {f"{k}.{p}" for k in interventions for p in ("R", "W.weight", "W.bias")}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"loreft state does not match hyperparameters {hp}: missing {missing}, unexpected {unexpected}"
        )
    with torch.no_grad():
        for key, f in interventions.items():
            for name, target in (("R", f.R.weight), ("W.weight", f.W.weight), ("W.bias", f.W.bias)):
                value = state[f"{key}.{name}"]
                if value.shape != target.shape:
                    raise ValueError(
                        f"loreft state: {key}.{name} has shape {tuple(value.shape)}, expected {tuple(target.shape)}"
                    )
                target.copy_(value)
            # orthonormal up to the stored dtype's rounding (bf16 weights, model.dtype: a few of its eps)
            tol = max(1e-3, 4 * torch.finfo(f.R.weight.dtype).eps)
            R = f.R.weight.double()
            err = (R @ R.t() - torch.eye(R.shape[0], dtype=R.dtype, device=R.device)).abs().max().item()
            if err > tol:
                raise ValueError(
                    f"loreft state: {key}.R rows are not orthonormal (max |R R^T - I| = {err:.2e} > {tol:.1e})"
                )
    return model.eval()
