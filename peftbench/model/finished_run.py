"""A finished run as a standard artifact: a peft adapter folder for peft-backed methods, and one loader,
`load_run(run_dir)`, for every method.

    results/{model}/{task}/{method}/seed{s}/
        train.json                the method, its hyper-parameters and the method folder it came from
        task_state.safetensors    what the method's own `load` reads (every method)
        adapter/                  peft methods only: adapter_config.json + adapter_model.safetensors,
                                  what `PeftModel.from_pretrained(base, "adapter")` loads
    results/{model}/base_model/   the base model both loaders start from

    from peftbench import load_run
    model, tokenizer = load_run("results/smoke/tiny-random-llama/qa/lora/seed0")   # a transformers model
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from peftbench import io
from peftbench.paths import ROOT

if TYPE_CHECKING:  # hints only: `import peftbench` stays free of torch
    import torch
    from transformers import PreTrainedTokenizerBase

ADAPTER = "adapter"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")  # what PeftModel.from_pretrained reads


def save_adapter(model: torch.nn.Module, run_dir: Path | str) -> tuple[list[str], int] | None:
    """Write a peft model's adapter folder with peft's own `save_pretrained` (renamed into place whole).
    Returns (files, bytes) of what a user ships, or None for a model peft did not build."""
    peft = sys.modules.get("peft")  # a model peft built was built after peft was imported: else ~2 s of imports
    if peft is None or not isinstance(model, peft.PeftModel):
        return None
    out = Path(run_dir) / ADAPTER
    if out.exists():  # left by an earlier, failed attempt: replaced whole
        shutil.rmtree(out)
    with io.atomic_dir(out) as tmp:
        model.save_pretrained(tmp)  # + peft's README.md model card, not counted as storage
    return [f"{ADAPTER}/{f}" for f in ADAPTER_FILES], sum((out / f).stat().st_size for f in ADAPTER_FILES)


def method_spec(run_dir: Path | str, methods_root: Path | str | None = None) -> dict:
    """{dir, name, hyperparameters} of a run's method, from its train.json: a profile's variant (e.g. Adapter-L)
    runs its parent folder's method.py with the recorded hyper-parameters."""
    run_dir = Path(run_dir)
    path = run_dir / "train.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing (not a finished peftbench run: results/<model>/<task>/<method>/seed<s>)"
        )
    train = io.read_json(path)
    folder = Path(methods_root or ROOT / "methods") / train.get("method_folder", train["method"])
    if not (folder / "method.py").is_file():
        raise FileNotFoundError(f"{path}: field 'method_folder': no {folder / 'method.py'}")
    return {"name": train["method"], "dir": str(folder), "hyperparameters": train["hyperparameters"]}


def base_dir(run_dir: Path | str) -> Path:
    """results/{model}/base_model, three levels above results/{model}/{task}/{method}/seed{s}."""
    return Path(run_dir).resolve().parents[2] / "base_model"


def base_source(run_dir: Path | str) -> dict:
    """{source, hub_id, note} of the run's base folder (base_model.SOURCE_FILE); {} for one built before it."""
    path = base_dir(run_dir) / "peftbench_source.json"
    return io.read_json(path) if path.is_file() else {}


def load_run(
    run_dir: Path | str, base: Path | str | None = None, device: str = "cpu"
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """(model, tokenizer) of a finished run of any method: the base model (`base`, default the run's
    results/{model}/base_model) with the stored task state loaded by the method's own `load` (LoRA and
    (IA)^3 merged, prefix/prompt tuning as peft models, houlsby/loreft/... with their modules), in eval mode.
    A plain transformers causal LM (or a peft wrapper of one): `model.generate`, lm-eval's HFLM, ... work."""
    from peftbench import methods
    from peftbench.model import assemble

    run_dir = Path(run_dir)
    spec = method_spec(run_dir)
    state = methods.load_state(run_dir / "task_state.safetensors")
    dtype = assemble.DTYPES[io.read_json(run_dir / "train.json").get("weights_dtype", "fp32")]  # as it was stored
    model, tok, *_ = assemble.method_model(base or base_dir(run_dir), spec, state, device=device, dtype=dtype)
    return model, tok


def record(run_dir: Path | str, method: str | None = None) -> dict[str, str]:
    """What lm_eval.json's config adds about the run it evaluated (lm-eval's own "model"/"model_args" say
    how: `peftbench` with `run=<run folder>`)."""
    return {"peftbench_run": str(run_dir), "peftbench_method": method or method_spec(run_dir)["name"]}
