"""Load an exported run in its reference library alone and compare its logits with peftbench's: Houlsby in
AdapterHub's `adapters`, LoReFT in Stanford's `pyreft` (which first writes the folder with its own `save`).

Runs in .venv-interop (scripts/setup_interop.sh): `adapters` 1.3 pins transformers 4.57 and pyreft 0.1.0
4.45, peftbench runs 5.24, so they cannot share one environment; this file imports nothing of peftbench.

    .venv-interop/bin/python scripts/interop_check.py {adapters,pyreft} EXPORT BASE PROBE

EXPORT  the folder `python -m peftbench.export` is writing: for adapters, adapter_config.json +
        adapter.safetensors in adapters' own format and base_norms.safetensors (the layer norms Houlsby trains,
        which an adapters file cannot hold); for pyreft, loreft.json + loreft_state.safetensors (peftbench's),
        to which pyreft's own ReftModel.save adds config.json and intkey_*.bin
BASE    the run's base model folder
PROBE   safetensors with input_ids (1 x n) and logits (1 x n x vocab), peftbench's
Prints the max |logit difference| as JSON; exits 1 above the tolerance."""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM

TOLERANCE = 1e-5  # relative to the largest |logit|, as peftbench.export's own check


def load_base(base: Path):
    """transformers 4.x does not read 5.x's `rope_parameters`; without this it would fall back to its default
    rope_theta (10,000; SmolLM2 uses 100,000) and give other logits with no warning."""
    config = AutoConfig.from_pretrained(base)
    rope = json.loads((base / "config.json").read_text()).get("rope_parameters")
    if rope:
        if rope.get("rope_type", "default") != "default":
            sys.exit(f"{base}/config.json: rope_parameters {rope}: only the default rope maps to transformers 4.x")
        config.rope_theta = rope["rope_theta"]
    return AutoModelForCausalLM.from_pretrained(base, config=config, torch_dtype=torch.float32).eval()


def adapters_model(export: Path, base: Path):
    import adapters

    model = load_base(base)
    norms = load_file(export / "base_norms.safetensors")
    missing, unexpected = model.load_state_dict(norms, strict=False)
    if unexpected:
        sys.exit(f"{export}/base_norms.safetensors: not parameters of the base: {unexpected[:3]}")
    adapters.init(model)
    name = model.load_adapter(str(export), load_as="peftbench", set_active=True, use_safetensors=True)
    model.set_active_adapters(name)
    return model


def pyreft_float32():
    """pyreft 0.1.0 builds LoreftIntervention's W in bfloat16 unless told otherwise, and ReftModel.load does not
    tell it: an fp32 run would load rounded to bf16 (and fail against an fp32 base). Default it to float32."""
    import pyreft

    init = pyreft.LoreftIntervention.__init__

    def float32_init(self, **kwargs):
        init(self, **{"dtype": torch.float32, **kwargs})

    pyreft.LoreftIntervention.__init__ = float32_init
    return pyreft


def pyreft_positions(spec: dict, n: int) -> list[int]:
    """f{first}+l{last} of an n-token prompt, each position once (pyreft's get_intervention_locations)."""
    return sorted(set(range(min(spec["first"], n))) | set(range(max(0, n - spec["last"]), n)))


def pyreft_model(export: Path, base: Path):
    """Build the ReftModel from peftbench's state, write it with pyreft's own save, load it back with
    pyreft's own load on a fresh base: what a pyreft user runs."""
    pyreft = pyreft_float32()
    spec, state = json.loads((export / "loreft.json").read_text()), load_file(export / "loreft_state.safetensors")
    reps = [
        {
            "layer": layer,
            "component": "block_output",  # the decoder layer's output: the residual stream peftbench hooks
            "low_rank_dimension": spec["rank"],
            "intervention": pyreft.LoreftIntervention(embed_dim=spec["embed_dim"], low_rank_dimension=spec["rank"]),
        }
        for layer in spec["layers"]
    ]
    reft = pyreft.get_reft_model(load_base(base), pyreft.ReftConfig(representations=reps))
    for layer, intervention in zip(spec["layers"], reft.interventions.values()):
        intervention = intervention[0] if isinstance(intervention, (list, tuple)) else intervention
        R = state[f"{layer}.R"]  # r x d, orthonormal rows; pyreft's rotate_layer.weight is d x r
        intervention.load_state_dict(
            {"weight": state[f"{layer}.W.weight"], "bias": state[f"{layer}.W.bias"], "rotate_layer": R.t()}
        )
    reft.save(str(export))
    loaded = pyreft.ReftModel.load(str(export), load_base(base))

    def forward(input_ids):
        where = [[pyreft_positions(spec, input_ids.shape[1])]] * len(spec["layers"])
        return loaded({"input_ids": input_ids}, unit_locations={"sources->base": (None, where)})[1]

    return forward


def main(kind: str, export: str, base: str, probe: str) -> int:
    export, base = Path(export), Path(base)
    model = {"adapters": adapters_model, "pyreft": pyreft_model}[kind](export, base)
    expected = load_file(probe)
    with torch.no_grad():
        logits = model(input_ids=expected["input_ids"]).logits
    diff = (logits - expected["logits"]).abs().max().item()
    tolerance = TOLERANCE * max(1.0, expected["logits"].abs().max().item())
    print(json.dumps({"library": kind, "max_logit_diff": diff, "tolerance": tolerance}))
    return 0 if diff <= tolerance else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
