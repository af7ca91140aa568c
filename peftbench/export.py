"""A finished run handed to someone else, in the format their own library loads:

    python -m peftbench.export results/<model>/<task>/<method>/seed<s> OUT [--base HUB_ID_OR_PATH]

What OUT holds depends on what the method trained:
  peft adapter   (lora, ia3, prefix, prompt-tuning: the run has adapter/) adapter_config.json and
                 adapter_model.safetensors, `base_model_name_or_path` set to a base the recipient can load
                 (--base, else this run's base folder as an absolute path), so that
                 `AutoPeftModelForCausalLM.from_pretrained(OUT)` works from any folder;
  whole model    (full, scratch, shared-layers: after loading, a plain transformers model) `save_pretrained`
                 of `peftbench.load_run`'s model;
  refused        a model with modules of its own (houlsby, loreft: their `save_pretrained` refuses, since
                 transformers would load it without them and give other logits), or nothing trained
                 (zero-shot, few-shot: the base model and the task's prompt are the whole method).
Either way OUT gets README.md, a filled model card: base, method and paper, data, hyper-parameters, this run's
scores and the seed mean with its interval over test examples and seeds, provenance.

Before OUT is written, what it holds is reloaded with that library alone (peft's AutoPeftModelForCausalLM,
transformers' AutoModelForCausalLM) and its logits compared with peftbench's on one of the run's test prompts:
an export that would load differently is refused, not written. Written by hand: peft's card template has no
place for a benchmark's scores, and no library exports a run of a method it does not know."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

from peftbench import ROOT, io, runs

TOLERANCE = 1e-5  # max |logit difference| / max |logit|: merged LoRA vs unmerged differ by float rounding only
# (135M, 30 layers: 6e-5 at logits ~20, 3e-6 of the scale); Houlsby's adapters dropped on reload: 0.84


class Refused(ValueError):
    """The run cannot be exported faithfully; the message says why and what to do instead."""


def export(run_dir: Path | str, out: Path | str, base: str | None = None) -> dict:
    """Write OUT (whole, renamed into place) and return {kind, files, max_logit_diff}."""
    run_dir, out = Path(run_dir), Path(out)
    train = io.read_json(run_dir / "train.json") if (run_dir / "train.json").is_file() else None
    spec = runs.method_spec(run_dir)  # names train.json when the folder is not a finished run
    if not train.get("trainable_params"):
        raise Refused(
            f"{run_dir}: {spec['name']} trains nothing: the base model and the task's prompt are the whole "
            f"method (nothing to export; results/<model>/base_model is the model)"
        )
    base_ref = base or str(runs.base_dir(run_dir))
    if out.exists():
        raise FileExistsError(f"{out}: exists; export writes a new folder")
    with io.atomic_dir(out) as tmp:
        if (run_dir / runs.ADAPTER / "adapter_config.json").is_file():
            kind, diff = "peft", _write_peft(run_dir, tmp, base_ref)
        else:
            kind, diff = "transformers", _write_model(run_dir, tmp, spec["name"])
        io.write_text(tmp / "README.md", model_card(run_dir, train, spec, kind, base_ref, diff))
    return {"kind": kind, "files": sorted(p.name for p in out.iterdir()), "max_logit_diff": diff}


def _write_peft(run_dir: Path, tmp: Path, base_ref: str) -> float:
    for name in runs.ADAPTER_FILES:
        shutil.copy2(run_dir / runs.ADAPTER / name, tmp / name)
    config = io.read_json(tmp / "adapter_config.json")
    config["base_model_name_or_path"] = base_ref  # peft's was the run's relative path: loads only from the repo root
    io.write_json(tmp / "adapter_config.json", config)
    if Path(base_ref).is_dir():  # what the recipient runs: the adapter folder alone
        from peft import AutoPeftModelForCausalLM

        theirs = AutoPeftModelForCausalLM.from_pretrained(tmp)
    else:  # a hub id, offline here: the same adapter on this run's local copy of the base
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        theirs = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(runs.base_dir(run_dir)), tmp)
    return _compare(run_dir, theirs)


def _write_model(run_dir: Path, tmp: Path, method: str) -> float:
    model, tok = runs.load_run(run_dir)
    try:
        model.save_pretrained(tmp)
    except NotImplementedError as e:  # methods.refuse_save_pretrained: modules transformers does not know
        raise Refused(f"{run_dir}: {e}") from None
    tok.save_pretrained(tmp)
    from transformers import AutoModelForCausalLM

    theirs = AutoModelForCausalLM.from_pretrained(tmp, use_safetensors=True, trust_remote_code=False)
    return _compare(run_dir, theirs, ours=model)


def _compare(run_dir: Path, theirs, ours=None) -> float:
    """max |logits ours - theirs| on the run's first test prompt; refuses above TOLERANCE."""
    import torch

    if ours is None:
        ours, tok = runs.load_run(run_dir)
    else:
        tok = None
    if tok is None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(runs.base_dir(run_dir))
    prompt = io.read_jsonl(run_dir / "samples.jsonl")[0]["prompt"] if (run_dir / "samples.jsonl").is_file() else "Hi"
    ids = tok(prompt, return_tensors="pt")
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
    base_info = runs.base_source(run_dir)
    scores = seed_scores(run_dir, metric) if metric else {}
    front = {
        "library_name": "peft" if kind == "peft" else "transformers",
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
        *(
            [
                "from peft import AutoPeftModelForCausalLM",
                "model = AutoPeftModelForCausalLM.from_pretrained('<this folder>')",
            ]
            if kind == "peft"
            else [
                "from transformers import AutoModelForCausalLM",
                "model = AutoModelForCausalLM.from_pretrained('<this folder>')",
            ]
        ),
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
    print(
        f"{a.out}: {got['kind']} ({', '.join(got['files'])}); logits as peftbench's within {got['max_logit_diff']:.2g}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
