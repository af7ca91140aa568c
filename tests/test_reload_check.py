"""The reload check is not blind at any dtype (issue 27, case 2): a load() that ignores the stored state passed
in bf16 (max |logit difference| 0.0117 within a tolerance of 2 bf16 eps x max |logit|, 0.0222), so the untrained
base was scored under the method's name. The tolerance is now measured on the model (one more rounding of its
weights), and the reloaded model must be nearer the trained model than to the untrained one, which an ignored
state never is."""

from pathlib import Path

import pytest
import torch
from test_run_identity import broken_copy, data, profile

from peftbench import io
from peftbench.model import assemble
from peftbench.stages import pipeline, reload_check
from peftbench.stages.reload_check import ReloadMismatch

IGNORE_STATE = {  # each method's load() made to ignore its state: peft merged, native, peft prompt-like
    "lora": (
        "    result = set_peft_model_state_dict(model, state)",
        "    result = set_peft_model_state_dict(model, {})",
    ),
    "full": (
        "    missing, unexpected = model.load_state_dict(state, strict=False)",
        "    missing, unexpected = [], []",
    ),
    "ia3": (
        "    result = set_peft_model_state_dict(model, state)",
        "    result = set_peft_model_state_dict(model, {})",
    ),
    "prefix": ("    set_peft_model_state_dict(model, state)", "    pass"),
}


def cfg_for(dtype):
    cfg = profile()
    cfg["training"] = {**cfg["training"], "steps": 2, "checkpoint_every": 0}
    if dtype == "bf16":
        cfg.update(precision="bf16", model={**cfg["model"], "dtype": "bf16"})
    return cfg


def finetune(tiny_dir, cfg, spec, tmp_path):
    run = tmp_path / "run"
    pipeline.finetune(
        cfg, tiny_dir, "qa", spec, 0, data(tmp_path / "data"), run / "task_state.safetensors", run / "train.json"
    )
    return run


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("method", list(IGNORE_STATE))
def test_a_load_that_ignores_the_state_fails_at_every_dtype(tiny_dir, method_specs, tmp_path, method, dtype):
    spec = broken_copy(method_specs[method], tmp_path, f"{method}-ignores", *IGNORE_STATE[method])
    with pytest.raises(ReloadMismatch, match=rf"method '{method}-ignores': the model rebuilt by its load\(\)"):
        finetune(tiny_dir, cfg_for(dtype), spec, tmp_path)
    assert not (tmp_path / "run" / "train.json").exists()
    assert not (tmp_path / "run" / "adapter").exists()  # a peft method's folder: no declared output, not left


@pytest.mark.parametrize("method", ["lora", "ia3"])  # merged: W0 + BA (W0 * l) rounded to bf16 once more
def test_a_merged_method_in_bf16_passes_within_the_measured_rounding(tiny_dir, method_specs, tmp_path, method):
    run = finetune(tiny_dir, cfg_for("bf16"), method_specs[method], tmp_path)
    check = io.read_json(run / "train.json")["reload_check"]
    assert 0 < check["rounding_noise"] and check["max_abs_logit_diff"] <= check["tolerance"]
    assert check["reloaded_vs_trained_rms"] < check["reloaded_vs_untrained_rms"]


def test_the_rounding_probe_puts_every_weight_back():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(50, 16), torch.nn.Linear(16, 50)).to(torch.bfloat16)

    class Out:  # reload_check.logits reads .logits
        def __init__(self, m):
            self.m = m

        def __call__(self, input_ids, attention_mask):
            return type("O", (), {"logits": self.m(input_ids)})()

    wrapped = torch.nn.Module()
    wrapped.inner = model
    wrapped.forward = lambda input_ids, attention_mask: Out(model)(input_ids, attention_mask)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids, mask = torch.arange(8).reshape(2, 4), torch.ones(2, 4, dtype=torch.long)
    ref = reload_check.logits(wrapped, ids, mask)
    noise = reload_check.rounding_noise(wrapped, ids, mask, ref)
    assert noise > 0 and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(reload_check.logits(wrapped, ids, mask), ref)


REAL = Path("/work/main/results/smollm2-135m-instruct/base_model")  # the default model, where a run built it
REAL = next(
    (p for p in (Path("results/smollm2-135m-instruct/base_model"), REAL) if (p / "config.json").is_file()), None
)


@pytest.mark.skipif(REAL is None, reason="needs the default profile's base model (results/<model>/base_model)")
def test_on_the_default_model_in_bf16_an_ignored_state_fails_and_a_merged_one_passes(method_specs):
    """SmolLM2-135M-Instruct in bf16, no training (forward passes only): LoRA's B set to what a few steps give
    (the trained model, unmerged), the state stored in bf16 and reloaded merged (passes), or ignored (fails).
    The old tolerance (2 eps x max |logit|) was above the ignored state's difference here too."""
    torch.set_num_threads(2)
    spec, dtype = method_specs["lora"], torch.bfloat16
    model, tok, module, _ = assemble.method_model(REAL, spec, seed=0, dtype=dtype)
    records = [
        {
            "id": "a",
            "prompt": "Translate English to Spanish.\nEnglish: In the beginning God created the "
            "heaven and the earth.\nSpanish:",
            "target": "En el principio",
        }
    ]  # one record: bf16 forwards are slow on a CPU without avx512_bf16
    batch = reload_check.fixed_batch(records, tok, 128)
    untrained = reload_check.logits(assemble.place(model, dtype), *batch)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:  # some 50 AdamW steps at lr 2e-4: about 1e-2 each
                p.copy_((torch.randn(p.shape, generator=g) * 1e-2).to(p.dtype))
    trained = reload_check.logits(model, *batch)
    state = assemble.as_stored(module.task_state(model), dtype)
    del model
    reloaded, *_ = assemble.method_model(REAL, spec, state, seed=0, dtype=dtype)
    merged = reload_check.logits(reloaded, *batch)
    rounding = reload_check.rounding_noise(reloaded, *batch, merged)
    check = reload_check.check("lora", trained, merged, 1, dtype, untrained, rounding)
    old_tolerance = 1e-4 + 2 * torch.finfo(dtype).eps * trained.abs().max().item()
    ignored = (untrained - trained).abs().max().item()
    print(
        f"rounding {rounding:.3g}, tolerance {check['tolerance']:.3g} (was {old_tolerance:.3g}), merged "
        f"{check['max_abs_logit_diff']:.3g}, ignored {ignored:.3g}; merged rms to trained "
        f"{check['reloaded_vs_trained_rms']:.3g}, to untrained {check['reloaded_vs_untrained_rms']:.3g}"
    )
    assert ignored <= check["tolerance"]  # a max-|difference| tolerance alone cannot tell it from the merge
    with pytest.raises(ReloadMismatch, match="method 'lora': the model rebuilt .* no nearer the trained model"):
        reload_check.check("lora", trained, untrained, 1, dtype, untrained, rounding)
