"""A finished run handed to someone else, in the format their own library loads:

    python -m peftbench.export results/<model>/<task>/<method>/seed<s> OUT [--base HUB_ID_OR_PATH]

What OUT holds depends on what the method trained:
  peft      (lora, ia3, prefix, prompt-tuning: the run has adapter/) adapter_config.json and
            adapter_model.safetensors, `base_model_name_or_path` set to a base the recipient can load (--base,
            else this run's base folder as an absolute path): `AutoPeftModelForCausalLM.from_pretrained(OUT)`
            works from any folder;
  adapters  (houlsby) AdapterHub's format for its Houlsby config (DoubleSeqBnConfig), plus the layer norms
            Houlsby trains, which an adapters file cannot hold, in base_norms.safetensors;
  pyreft    (loreft) the folder pyreft's own ReftModel.save writes, and peftbench's R, W, b beside it;
  transformers (full, scratch, shared-layers: after loading, a plain transformers model) `save_pretrained`;
  refused   nothing trained (zero-shot, few-shot: the base model and the task's prompt are the whole method), or a
            variant the target format cannot express (Adapter-L placements, LoReFT without tied weights).
Either way OUT gets README.md, a filled model card: base, method and paper, task, hyper-parameters, this run's
scores and the seed mean with its interval over test examples and seeds, provenance.

Before OUT is written, it is reloaded with its library alone (peft, transformers; adapters and pyreft in
.venv-interop, whose transformers 4.x they pin: scripts/interop_check.py) and its logits compared with
peftbench's on one of the run's test prompts: an export that would load differently is refused, not written.
Written by hand: no library exports a run of a method it does not know, and peft's card has no place for scores."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

from peftbench import io
from peftbench.model import finished_run
from peftbench.paths import ROOT

TOLERANCE = 1e-5  # max |logit difference| / max |logit|: merged LoRA vs unmerged differ by float rounding only
# (135M, 30 layers: 6e-5 at logits ~20, 3e-6 of the scale); Houlsby's adapters dropped on reload: 0.84


class Refused(ValueError):
    """The run cannot be exported faithfully; the message says why and what to do instead."""


def export(run_dir: Path | str, out: Path | str, base: str | None = None) -> dict:
    """Write OUT (whole, renamed into place) and return {kind, files, max_logit_diff}."""
    run_dir, out = Path(run_dir), Path(out)
    spec = finished_run.method_spec(run_dir)  # names train.json when the folder is not a finished run
    train = io.read_json(run_dir / "train.json")
    if not train.get("trainable_params"):
        raise Refused(
            f"{run_dir}: {spec['name']} trains nothing: the base model and the task's prompt are the whole "
            f"method (nothing to export; results/<model>/base_model is the model)"
        )
    base_ref = base or str(finished_run.base_dir(run_dir))
    if out.exists():
        raise FileExistsError(f"{out}: exists; export writes a new folder")
    with io.atomic_dir(out) as tmp:
        if (run_dir / finished_run.ADAPTER / "adapter_config.json").is_file():
            kind, diff = "peft", _write_peft(run_dir, tmp, base_ref)
        elif Path(spec["dir"]).name == "houlsby":
            kind, diff = "adapters", _write_adapters(run_dir, tmp, spec)
        elif Path(spec["dir"]).name == "loreft":
            kind, diff = "pyreft", _write_pyreft(run_dir, tmp, spec)
        else:
            kind, diff = "transformers", _write_model(run_dir, tmp)
        io.write_text(tmp / "README.md", model_card(run_dir, train, spec, kind, base_ref, diff))
    return {"kind": kind, "files": sorted(p.name for p in out.iterdir()), "max_logit_diff": diff}


def _write_peft(run_dir: Path, tmp: Path, base_ref: str) -> float:
    for name in finished_run.ADAPTER_FILES:
        shutil.copy2(run_dir / finished_run.ADAPTER / name, tmp / name)
    config = io.read_json(tmp / "adapter_config.json")
    config["base_model_name_or_path"] = base_ref  # peft's was the run's relative path: loads only from the repo root
    io.write_json(tmp / "adapter_config.json", config)
    if Path(base_ref).is_dir():  # what the recipient runs: the adapter folder alone
        from peft import AutoPeftModelForCausalLM

        theirs = AutoPeftModelForCausalLM.from_pretrained(tmp)
    else:  # a hub id, offline here: the same adapter on this run's local copy of the base
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        theirs = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(finished_run.base_dir(run_dir)), tmp)
    return _compare(run_dir, theirs)


def _write_model(run_dir: Path, tmp: Path) -> float:
    model, tok = finished_run.load_run(run_dir)
    try:
        model.save_pretrained(tmp)
    except NotImplementedError as e:  # methods.refuse_save_pretrained: modules transformers does not know
        raise Refused(f"{run_dir}: {e}") from None
    tok.save_pretrained(tmp)
    from transformers import AutoModelForCausalLM

    theirs = AutoModelForCausalLM.from_pretrained(tmp, use_safetensors=True, trust_remote_code=False)
    return _compare(run_dir, theirs, model, tok)


# Houlsby's two adapters per block in AdapterHub's names: its DoubleSeqBnConfig (the Houlsby config) puts
# `attention_adapters` on the attention block's output and `output_adapters` on the MLP's, each
# h + up(f(down(h))) before the residual add, as methods/houlsby does on o_proj and down_proj.
ADAPTERS_SLOTS = {"self_attn.o_proj": "attention_adapters", "mlp.down_proj": "output_adapters"}
ADAPTERS_LAYERS = {"down": "adapter_down.0", "up": "adapter_up"}  # adapter_down is Sequential(Linear, activation)
ADAPTERS_NAME = "peftbench"


def _write_adapters(run_dir: Path, tmp: Path, spec: dict) -> float:
    """A Houlsby run in AdapterHub `adapters`' own format; the layer norms Houlsby trains (Fig. 2) go beside it
    in base_norms.safetensors, since an adapters file holds only adapter weights. Checked in .venv-interop."""
    from safetensors.torch import save_file

    from peftbench import methods

    hp, base_cfg = spec["hyperparameters"], io.read_json(finished_run.base_dir(run_dir) / "config.json")
    targets = tuple(hp.get("target_modules", {}).get(k) for k in ("attention", "mlp"))
    why = []
    if hp.get("placement", "houlsby") != "houlsby":
        why.append(f"placement {hp.get('placement')!r} is not Houlsby's two adapters per block")
    if targets != tuple(ADAPTERS_SLOTS):
        why.append(f"target_modules {targets}, not o_proj and down_proj")
    if hp.get("layer_norm") or hp.get("bias") is False:
        why.append("layer_norm: true or bias: false, which DoubleSeqBnConfig does not have")
    if base_cfg["hidden_size"] % hp["size"]:
        why.append(f"hidden size {base_cfg['hidden_size']} is not a multiple of size {hp['size']}")
    if why or base_cfg.get("model_type") != "llama":
        raise Refused(f"{run_dir}: no AdapterHub equal: {'; '.join(why) or base_cfg.get('model_type') + ' model'}")
    state = methods.load_state(run_dir / "task_state.safetensors")
    adapter, norms = {}, {}
    for key, tensor in state.items():
        module, _, rest = key.partition(".adapter.")  # model.layers.3.self_attn.o_proj.adapter.down.weight
        if not rest:
            norms[key] = tensor.contiguous()
            continue
        block, slot = next((module[: -len(t) - 1], s) for t, s in ADAPTERS_SLOTS.items() if module.endswith(t))
        layer, param = rest.split(".")
        adapter[f"{block}.{slot}.adapters.{ADAPTERS_NAME}.{ADAPTERS_LAYERS[layer]}.{param}"] = tensor.contiguous()
    save_file(adapter, tmp / "adapter.safetensors", metadata={"format": "pt"})
    save_file(norms, tmp / "base_norms.safetensors", metadata={"format": "pt"})
    config = dict(
        ADAPTERS_CONFIG,
        non_linearity=hp.get("activation", "gelu"),
        reduction_factor=base_cfg["hidden_size"] // hp["size"],
    )
    io.write_json(
        tmp / "adapter_config.json",
        {
            "config": config,
            "hidden_size": base_cfg["hidden_size"],
            "model_class": "LlamaForCausalLM",
            "model_name": "",
            "model_type": "llama",
            "name": ADAPTERS_NAME,
            "version": "adapters.1.3.0",
        },
    )
    return _check_in_interop("adapters", run_dir, tmp)


# adapters 1.3's DoubleSeqBnConfig as its save_adapter writes it, with Houlsby's activation and size set per run
ADAPTERS_CONFIG = {
    "adapter_residual_before_ln": False, "cross_adapter": False, "dropout": 0.0, "factorized_phm_W": True,
    "factorized_phm_rule": False, "hypercomplex_nonlinearity": "glorot-uniform", "init_weights": "bert",
    "init_weights_seed": None, "inv_adapter": None, "inv_adapter_reduction_factor": None, "is_parallel": False,
    "learn_phm": True, "leave_out": [], "ln_after": False, "ln_before": False, "mh_adapter": True,
    "original_ln_after": True, "original_ln_before": False, "output_adapter": True, "phm_bias": True,
    "phm_c_init": "normal", "phm_dim": 4, "phm_init_range": 0.0001, "phm_layer": False, "phm_rank": 1,
    "residual_before_ln": True, "scaling": 1.0, "shared_W_phm": False, "shared_phm_rule": True,
    "stochastic_depth": 0.0, "use_gating": False,
}  # fmt: skip


def _write_pyreft(run_dir: Path, tmp: Path, spec: dict) -> float:
    """A LoReFT run as pyreft's own folder: peftbench's R, W, b and positions (loreft.json,
    loreft_state.safetensors) from which .venv-interop builds the ReftModel and writes it with pyreft's `save`
    (config.json, intkey_*.bin), then loads it back with `ReftModel.load` and compares logits."""
    from safetensors.torch import save_file

    from peftbench import methods

    hp, base_cfg = spec["hyperparameters"], io.read_json(finished_run.base_dir(run_dir) / "config.json")
    if not hp.get("share_weights", True) or base_cfg.get("model_type") != "llama":
        raise Refused(f"{run_dir}: no pyreft equal here: share_weights false or a {base_cfg.get('model_type')} model")
    n = base_cfg["num_hidden_layers"]
    layers = list(range(n)) if hp.get("layers", "all") == "all" else sorted(int(i) for i in hp["layers"])
    loreft = {"rank": hp.get("rank", 8), "first": hp.get("first", 7), "last": hp.get("last", 7), "layers": layers}
    io.write_json(tmp / "loreft.json", {**loreft, "embed_dim": base_cfg["hidden_size"], "share_weights": True})
    state = methods.load_state(run_dir / "task_state.safetensors")
    save_file(
        {k: v.contiguous() for k, v in state.items()}, tmp / "loreft_state.safetensors", metadata={"format": "pt"}
    )
    return _check_in_interop("pyreft", run_dir, tmp)


def interop_python() -> Path:
    """The interpreter of .venv-interop (scripts/setup_interop.sh), or $PEFTBENCH_INTEROP_PYTHON."""
    import os

    return Path(os.environ.get("PEFTBENCH_INTEROP_PYTHON") or ROOT / ".venv-interop/bin/python")


def _check_in_interop(library: str, run_dir: Path, folder: Path) -> float:
    """Reload `folder` with `library` alone (scripts/interop_check.py in .venv-interop) against our logits."""
    import json
    import subprocess

    import torch
    from safetensors.torch import save_file

    python = interop_python()
    if not python.is_file():
        raise Refused(
            f"{run_dir}: exporting to {library} is checked by reloading it in {library}, which needs another "
            f"transformers than peftbench's: no {python} (run scripts/setup_interop.sh)"
        )
    ours, tok = finished_run.load_run(run_dir)
    ids = tok(_probe_prompt(run_dir), return_tensors="pt")["input_ids"][:, :48]
    probe = folder / ".peftbench-probe.safetensors"  # inside the folder being built (io.atomic_dir), removed below
    with torch.no_grad():
        save_file({"input_ids": ids, "logits": ours(input_ids=ids).logits.contiguous()}, probe)
    cmd = [
        str(python),
        str(ROOT / "scripts/interop_check.py"),
        library,
        str(folder),
        str(finished_run.base_dir(run_dir)),
    ]
    try:
        res = subprocess.run([*cmd, str(probe)], capture_output=True, text=True)
    finally:
        probe.unlink(missing_ok=True)
    got = json.loads(res.stdout.strip().splitlines()[-1]) if res.stdout.strip() else {}
    if res.returncode != 0:
        raise Refused(
            f"{run_dir}: reloaded in {library} alone, the export gives other logits or does not load "
            f"({got or res.stderr.strip()[-800:]}): not written"
        )
    return got["max_logit_diff"]


def _probe_prompt(run_dir: Path) -> str:
    samples = run_dir / "samples.jsonl"
    return io.read_jsonl(samples)[0]["prompt"] if samples.is_file() else "Passage: Paris is in France.\nAnswer:"


def _compare(run_dir: Path, theirs, ours=None, tok=None) -> float:
    """max |logits ours - theirs| on the run's first test prompt; refuses above TOLERANCE."""
    import torch

    if ours is None:
        ours, tok = finished_run.load_run(run_dir)
    ids = tok(_probe_prompt(run_dir), return_tensors="pt")
    theirs.eval()
    with torch.no_grad():
        expected = ours(**ids).logits
        diff = (expected - theirs(**ids).logits).abs().max().item()
    tolerance = TOLERANCE * max(1.0, expected.abs().max().item())
    if not diff <= tolerance:
        raise Refused(
            f"{run_dir}: the exported model, reloaded alone, gives other logits (max difference {diff:.3g} > "
            f"{tolerance:.3g}): not written"
        )
    return diff


def seed_scores(run_dir: Path, metric: str) -> dict:
    """{this_run, seeds}: this run's score with its interval over test examples, and the mean of every seed of
    the same method and task found beside it with its interval over test examples and seeds (the report's)."""
    from peftbench.stats import task as task_stats

    method_dir, task = run_dir.parent, run_dir.parents[1].name
    siblings = {
        (method_dir.name, int(d.name[4:])): d
        for d in sorted(method_dir.glob("seed*"))
        if d.name[4:].isdigit() and (d / "samples.jsonl").is_file()
    }
    seed = int(run_dir.name[4:])
    out = {}
    for key, chosen in (("this_run", {(method_dir.name, seed): run_dir}), ("seeds", siblings)):
        analysis = task_stats.analyse(task, ROOT / "tasks" / task, metric, chosen)
        if analysis.has(method_dir.name, metric):
            e = analysis.score(method_dir.name, metric)
            out[key] = {"value": e.value, "low": e.low, "high": e.high, "seeds": sorted(s for _, s in chosen)}
    return out


def model_card(run_dir: Path, train: dict, spec: dict, kind: str, base_ref: str, diff: float) -> str:
    lm_eval = io.read_json(run_dir / "lm_eval.json") if (run_dir / "lm_eval.json").is_file() else {}
    ours = lm_eval.get("peftbench", {})
    metric = ours.get("main_metric")
    method_yaml = yaml.safe_load((Path(spec["dir"]) / "method.yaml").read_text())
    base_info = finished_run.base_source(run_dir)
    scores = seed_scores(run_dir, metric) if metric else {}
    front = {
        "library_name": kind,
        "tags": ["peftbench", spec["name"], train["task"]],
        **({"base_model": base_info["hub_id"]} if base_info.get("hub_id") else {}),
    }
    prov = train.get("provenance", {})
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).strip(),
        "---",
        f"# {spec['name']} on {train['task']}, seed {train['seed']} (a peftbench run)",
        "",
        f"- **Method**: {method_yaml.get('description', spec['name'])}",
        f"- **Paper**: {method_yaml.get('paper', '(not given)')}",
        f"- **Base model**: `{base_ref}`: {base_info.get('note', 'a Hugging Face model folder')}.",
        f"- **Task**: {_title(ROOT / 'tasks' / train['task'] / 'README.md')} (tasks/{train['task']} of peftbench)",
        f"- **Trainable parameters**: {train['trainable_params']:,} ({train['trainable_percent']:.4g}% of the base).",
        "",
        "## Scores",
        f"lm-eval on the task's test split ({ours.get('scores') and len(io.read_jsonl(run_dir / 'samples.jsonl'))} "
        f"examples), greedy: {', '.join(f'{k} {v:.2f}' for k, v in ours.get('scores', {}).items()) or '(not evaluated)'}.",
    ]
    for key, what in (("this_run", "this run (interval over test examples)"), ("seeds", "seed mean")):
        if key in scores:
            s = scores[key]
            lines.append(
                f"- {metric}, {what}, seeds {s['seeds']}: **{s['value']:.2f} [{s['low']:.2f}, {s['high']:.2f}]** (95%"
                f"{', over test examples and seeds' if key == 'seeds' and len(s['seeds']) > 1 else ''})"
            )
    lines += [
        "",
        "## Training",
        f"- Hyper-parameters (method.yaml, as run): `{json.dumps(train['hyperparameters'])}`",
        f"- Training: `{json.dumps(train.get('training'))}`; precision {train.get('precision')}, weights "
        f"{train.get('weights_dtype')}",
        f"- Data (sha256): `{json.dumps(prov.get('files', {}).get('data'))}`",
        "",
        "## Load",
        "```python",
        *LOAD[kind],
        "```",
        f"Checked when exported: reloaded this way alone, its logits on a test prompt differ from peftbench's by at "
        f"most {diff:.2g}"
        + (
            "."
            if Path(base_ref).is_dir()
            else f", on this run's own base folder ({base_info.get('note', 'a local folder')}), which `--base` "
            f"named `{base_ref}`: where those are not the same weights, scores will differ."
        ),
        *(_PEFT_GENERATION_NOTE if spec["name"] in ("prefix", "prompt-tuning") and kind == "peft" else ()),
        "",
        "## Provenance",
        f"- peftbench commit {prov.get('git', {}).get('commit')} (dirty: {prov.get('git', {}).get('dirty')}), "
        f"config hash {prov.get('config_hash')}",
        f"- versions: `{json.dumps(prov.get('versions'))}`",
        f"- hardware: `{json.dumps(prov.get('hardware'))}`",
        f"- the run: `{run_dir}` (train.json, lm_eval.json, samples.jsonl beside its task state)",
        "",
    ]
    return "\n".join(lines)


LOAD = {
    "peft": [
        "from peft import AutoPeftModelForCausalLM",
        "model = AutoPeftModelForCausalLM.from_pretrained('<this folder>')",
    ],
    "transformers": [
        "from transformers import AutoModelForCausalLM",
        "model = AutoModelForCausalLM.from_pretrained('<this folder>')",
    ],
    "adapters": [  # adapters 1.3 runs on transformers 4.57 (scripts/interop_check.py, which also maps the rope)
        "import adapters; from safetensors.torch import load_file",
        "from transformers import AutoModelForCausalLM",
        "model = AutoModelForCausalLM.from_pretrained('<the base model>')",
        "model.load_state_dict(load_file('<this folder>/base_norms.safetensors'), strict=False)  # Houlsby trains the norms",
        "adapters.init(model); model.set_active_adapters(model.load_adapter('<this folder>', use_safetensors=True))",
    ],
    "pyreft": [  # pyreft 0.1.0 on transformers 4.57; scripts/interop_check.py also defaults its W to float32
        "import pyreft; from transformers import AutoModelForCausalLM",
        "model = pyreft.ReftModel.load('<this folder>', AutoModelForCausalLM.from_pretrained('<the base model>'))",
        "# intervene on the prompt's first `first` and last `last` positions of every layer in loreft.json:",
        "# model({'input_ids': ids}, unit_locations={'sources->base': (None, [[positions]] * len(layers))})",
    ],
}


def _title(readme: Path) -> str:
    """The first heading of a task's README.md."""
    for line in readme.read_text().splitlines() if readme.is_file() else ():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return readme.parent.name


_PEFT_GENERATION_NOTE = (
    "",
    "**Generation with plain peft 0.21.2 and transformers 5.24 is wrong for prefix and prompt tuning** (logits "
    "are right, `generate` is not: peft reads the cache under its old name, `past_key_values`). peftbench "
    "generates through `peftbench.model.peft_compat.fix_generation(model)`; use it, or "
    "`peftbench.load_run(<run>)`, until peft handles transformers' `cache` argument.",
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m peftbench.export", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a finished run: results/<model>/<task>/<method>/seed<s>")
    p.add_argument("out", help="a new folder")
    p.add_argument(
        "--base", help="the base model the recipient loads (hub id or path); default: this run's base folder"
    )
    a = p.parse_args(argv)
    try:
        got = export(a.run, a.out, a.base)
    except (Refused, FileNotFoundError, FileExistsError) as e:
        print(f"peftbench.export: {e}", file=sys.stderr)
        return 1
    files = got["files"] if len(got["files"]) <= 6 else [*got["files"][:5], f"... {len(got['files'])} files"]
    print(f"{a.out}: {got['kind']} ({', '.join(files)}); logits as peftbench's within {got['max_logit_diff']:.2g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
