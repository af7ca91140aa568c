"""The method contract and each method's defining property (Hu et al. 2021 for LoRA)."""

import copy

import pytest
import torch
from conftest import logits, perturb
from test_train import RECORDS, settings

from peftbench import config, methods
from peftbench.data import build
from peftbench.model.assemble import method_model
from peftbench.paths import ROOT
from peftbench.stages import evaluate, train


def setup(tiny_dir, spec, state=None):
    model, tok, module, base_params = method_model(tiny_dir, spec, state)
    return model, module


def test_methods_are_discovered_from_their_folders(method_specs):
    assert {"zero-shot", "full", "lora"} <= set(method_specs)
    for spec in method_specs.values():
        module = methods.load_module(spec["dir"])
        assert all(callable(getattr(module, f)) for f in methods.REQUIRED)


def test_zero_shot_trains_and_stores_nothing(tiny_dir, method_specs):
    model, module = setup(tiny_dir, method_specs["zero-shot"])
    assert methods.count_parameters(model)[0] == 0 and module.task_state(model) == {}


def test_full_trains_everything_and_round_trips(tiny_dir, method_specs, tmp_path, batch):
    model, module = setup(tiny_dir, method_specs["full"])
    trainable, total = methods.count_parameters(model)
    assert trainable == total == 3_219_776
    perturb(model)
    methods.save_state(module.task_state(model), tmp_path / "s.safetensors")
    state = methods.load_state(tmp_path / "s.safetensors")
    assert "lm_head.weight" not in state, "tied embedding stored twice"
    loaded, _ = setup(tiny_dir, method_specs["full"], state)
    assert torch.equal(logits(loaded, batch), logits(model.eval(), batch))


def lora_count(model_config, hp):
    """r (d_in + d_out) per adapted matrix: A is r x d_in, B is d_out x r (Sec. 4.1)."""
    d, heads, kv = model_config.hidden_size, model_config.num_attention_heads, model_config.num_key_value_heads
    head_dim = d // heads
    dims = {
        "q_proj": (d, heads * head_dim),
        "k_proj": (d, kv * head_dim),
        "v_proj": (d, kv * head_dim),
        "o_proj": (heads * head_dim, d),
    }
    per_layer = sum(hp["r"] * sum(dims[m]) for m in hp["target_modules"])
    return per_layer * model_config.num_hidden_layers


def test_lora_parameter_count_identity_round_trip_and_merge(tiny_dir, method_specs, tmp_path, batch, tiny):
    spec = method_specs["lora"]
    base, _ = tiny
    model, module = setup(tiny_dir, spec)
    trainable, _ = methods.count_parameters(model)
    assert trainable == lora_count(base.config, spec["hyperparameters"]) == 3584
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    # B = 0 at initialisation: the adapted model is the base model
    assert torch.equal(logits(model.eval(), batch), logits(base, batch))

    perturb(model)
    model.eval()
    trained = logits(model, batch)
    assert not torch.allclose(trained, logits(base, batch))
    state = module.task_state(model)
    assert all("lora_" in k for k in state) and len(state) == 2 * 2 * 2  # A,B x q,v x layers
    methods.save_state(state, tmp_path / "lora.safetensors")

    unmerged_spec = copy.deepcopy(spec)
    unmerged_spec["hyperparameters"]["merge"] = False
    unmerged, _ = setup(tiny_dir, unmerged_spec, methods.load_state(tmp_path / "lora.safetensors"))
    assert torch.equal(logits(unmerged, batch), trained)  # exact round trip
    merged, _ = setup(tiny_dir, spec, methods.load_state(tmp_path / "lora.safetensors"))
    assert not any("lora_" in n for n, _ in merged.named_parameters())  # folded into W0
    torch.testing.assert_close(logits(merged, batch), trained, atol=1e-4, rtol=1e-4)


def test_save_state_is_safetensors_without_pickle(tmp_path):
    methods.save_state({"w": torch.ones(2, 3)}, tmp_path / "x.safetensors")
    raw = (tmp_path / "x.safetensors").read_bytes()
    assert b"pickle" not in raw and raw[8:9] == b"{"  # 8-byte header length, then JSON header
    assert torch.equal(methods.load_state(tmp_path / "x.safetensors")["w"], torch.ones(2, 3))


def test_every_method_module_follows_the_typed_contract():
    from peftbench.methods import Method, load_module

    for folder in sorted((ROOT / "methods").glob("*/method.py")):
        assert isinstance(load_module(folder.parent), Method), f"{folder} lacks attach/task_state/load"


@pytest.mark.parametrize("method", ["ia3", "prefix", "prompt-tuning"])
def test_a_peft_method_trains_and_lm_eval_scores_the_loaded_model(tiny_dir, method_specs, tmp_path, method):
    spec = method_specs[method]
    model, tok, module, _ = method_model(tiny_dir, spec)
    stats = train.train(model, tok, RECORDS, RECORDS[:4], settings(**spec["training"]), seed=0)  # method.yaml's lr
    assert stats["val_loss_after"] < stats["val_loss_before"]

    loaded, tok, *_ = method_model(tiny_dir, spec, module.task_state(model))
    build.build(config.load_task("qa"), {"train": 4, "validation": 2, "test": 2}, tmp_path / "qa")
    results, samples = evaluate.run(
        loaded, tok, config.load_task("qa")["dir"], tmp_path / "qa" / "test.jsonl", batch_size=2
    )
    assert set(evaluate.scores(results, "qa")) == {"exact_match", "f1"}
    assert len(samples["peftbench_qa"]) == 2
