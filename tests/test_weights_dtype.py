"""Weights in the dtype the profile says (model.dtype): pyreft loads LLaMA-7B in bf16 (examples/loreft/train.py,
-dtype bfloat16 on CUDA), LLM-Adapters in fp16. The base loads in it, the trainable weights train in fp32 (the
master copy of mixed-precision training, Micikevicius et al. 2018, Sec. 3.1) and are stored rounded to it; the
stored state reloads bit for bit. Without the key nothing changes: fp32, and no run's identity moves."""

import pytest
import torch
from test_run_identity import data, profile

from peftbench import config, identity, io, methods, preflight
from peftbench.model import assemble, finished_run
from peftbench.stages import pipeline


def bf16_profile():
    cfg = {**profile(), "precision": "bf16", "model": {"name": "tiny", "source": "tiny-random", "dtype": "bf16"}}
    cfg["training"] = {**cfg["training"], "steps": 2, "checkpoint_every": 0}  # bf16 on a CPU without it: slow
    return cfg


def finetune(tiny_dir, cfg, spec, tmp_path):
    run = tmp_path / "run"
    pipeline.finetune(cfg, tiny_dir, "qa", spec, 0, data(tmp_path / "data"), *_outputs(run))
    return run, io.read_json(run / "train.json")


def _outputs(run):
    return run / "task_state.safetensors", run / "train.json"


@pytest.mark.parametrize("method", ["full", "loreft", "houlsby", "prefix"])  # every weight; native modules; peft
def test_a_bf16_profile_stores_bf16_tensors_and_reloads_them_exactly(tiny_dir, method_specs, tmp_path, method):
    spec = method_specs[method]
    run, trained = finetune(tiny_dir, bf16_profile(), spec, tmp_path)
    stored = methods.load_state(run / "task_state.safetensors")
    assert {t.dtype for t in stored.values()} == {torch.bfloat16} and trained["stored_dtypes"] == ["bfloat16"]
    assert trained["weights_dtype"] == "bf16"
    # the evaluated model is the trained one, rounded to bf16 as stored: not within a tolerance, equal
    assert trained["reload_check"]["max_abs_logit_diff"] == 0.0
    model, _ = finished_run.load_run(run, base=tiny_dir)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    reread = methods.load_module(spec["dir"]).task_state(model)
    assert stored.keys() <= reread.keys() and all(torch.equal(reread[k], stored[k]) for k in stored)


def test_merged_lora_in_bf16_is_stored_in_bf16_and_passes_the_reload_check(tiny_dir, method_specs, tmp_path):
    """W0 + BA folded in bf16 rounds once more than the unmerged sum: equal within the check's tolerance."""
    run, trained = finetune(tiny_dir, bf16_profile(), method_specs["lora"], tmp_path)
    assert trained["stored_dtypes"] == ["bfloat16"]
    assert trained["reload_check"]["max_abs_logit_diff"] <= trained["reload_check"]["tolerance"]


def test_trainable_weights_train_in_fp32_over_frozen_bf16_ones(tiny_dir, method_specs):
    model, *_ = assemble.method_model(tiny_dir, method_specs["lora"], dtype=torch.bfloat16)
    dtypes = {p.requires_grad: set() for p in model.parameters()}
    for p in model.parameters():
        dtypes[p.requires_grad].add(p.dtype)
    assert dtypes == {True: {torch.float32}, False: {torch.bfloat16}}


def test_without_the_key_weights_stay_fp32_and_the_identity_is_unchanged(tiny_dir, method_specs):
    model, *_ = assemble.method_model(tiny_dir, method_specs["lora"])
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert assemble.weights_dtype(profile()) == torch.float32
    spec = method_specs["lora"]
    key = identity.run_identity(profile(), "qa", spec, {}, 0, {})
    assert key["model"] == {"name": "tiny", "source": "tiny-random"}, "no dtype filled in: old config hashes hold"


def test_bf16_weights_need_bf16_autocast():
    cfg = config.load_profile(config.CONFIG / "config.yaml")
    cfg["model"]["dtype"] = "bf16"
    with pytest.raises(config.ConfigError, match=r"model.dtype': bf16 weights need precision: bf16"):
        preflight.weights_precision(cfg, "config")
