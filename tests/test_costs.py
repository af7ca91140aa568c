"""The cost measurements: side-by-side latency overhead and task switching, on tiny models (seconds)."""

import copy
import math

import pytest
import torch

from peftbench import identity, io, methods
from peftbench.costs import latency_overhead, task_switch
from peftbench.model import base_model

TINY_GPT2 = {"n_embd": 64, "n_layer": 2, "n_head": 4}
SWITCH_IS_ROUNDING = {"lora", "ia3"}  # merged: W - delta + delta', equal up to float rounding


@pytest.fixture(scope="module")
def gpt2_variants():
    return latency_overhead.build_gpt2(TINY_GPT2, adapter_params=5000)


def test_adapter_bottleneck_matches_the_papers_parameter_budget():
    # GPT-2 medium, |Theta| = 11M (Table 1): m = 111 (Adapter-H, 2 per block) and 222 (Adapter-L, 1 + LayerNorm)
    assert latency_overhead.adapter_bottleneck(11e6, 1024, 24, "houlsby") == 111
    assert latency_overhead.adapter_bottleneck(11e6, 1024, 24, "mlp_only") == 222
    with pytest.raises(ValueError, match="too few"):
        latency_overhead.adapter_bottleneck(100, 1024, 24, "houlsby")


def test_forward_rows_one_per_variant_with_finite_medians(gpt2_variants):
    base, variants = gpt2_variants
    rows = latency_overhead.forward_rows(base, variants, batch=1, seq_len=8, repeats=2)
    by = {r["variant"]: r for r in rows}
    assert list(by) == ["base", latency_overhead.CONTROL, *variants]
    assert all(math.isfinite(r["median_ms"]) and r["median_ms"] > 0 for r in rows)
    assert by["base"]["overhead_pct"] == 0 and by["lora-merged"]["added_params"] == 0
    # FLOPs: adapters and unmerged LoRA add matmuls, merged LoRA none, prompt tuning 100 positions more
    assert by["adapter-h"]["flops_overhead_pct"] > 0 and by["lora"]["flops_overhead_pct"] > 0
    assert by["lora-merged"]["flops_overhead_pct"] == 0 == by[latency_overhead.CONTROL]["flops_overhead_pct"]
    assert by["prompt-tuning"]["flops_overhead_pct"] > 100
    assert by["adapter-l"]["added_params"] == 2 * (
        2 * 64 * variants["adapter-l"][2]["size"] + variants["adapter-l"][2]["size"] + 64 + 2 * 64
    )


def test_merged_lora_row_measures_the_same_function_as_unmerged(gpt2_variants):
    base, variants = gpt2_variants
    ids = torch.randint(0, base.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        unmerged, merged, plain = (
            m(input_ids=ids).logits for m in (variants["lora"][0], variants["lora-merged"][0], base)
        )
    assert not torch.allclose(unmerged, plain, atol=1e-4)  # the stand-in state is not the identity
    torch.testing.assert_close(merged, unmerged, atol=1e-4, rtol=1e-4)
    assert not any("lora_" in n for n, _ in variants["lora-merged"][0].named_parameters())


def test_generation_rows_time_every_method_beside_the_base(tiny_dir, method_specs):
    specs = {m: method_specs[m] for m in ("lora", "houlsby", "scratch")}  # merged, added layers, rewritten weights
    rows = latency_overhead.generation_rows(tiny_dir, specs, ["Q: why?\nA:"], new_tokens=2, repeats=2)
    by = {r["variant"]: r for r in rows}
    assert list(by) == ["base", latency_overhead.CONTROL, "lora", "houlsby", "scratch"]
    assert all(math.isfinite(r["median_ms"]) and r["median_ms"] > 0 and r["repeats"] == 2 for r in rows)
    assert by["lora"]["added_params"] == 0 < by["houlsby"]["added_params"]


@pytest.fixture(scope="module")
def tiny_base(tiny_dir):
    return base_model.load(tiny_dir)[0]


def deployed(base, spec, state=None, seed=0):
    """method_model without reading the base folder again: attach (state None) or load on a copy of base."""
    module = methods.load_module(spec["dir"])
    methods.seed_everything(seed)
    model = copy.deepcopy(base)
    hp = spec["hyperparameters"]
    return (module.attach(model, hp) if state is None else module.load(model, state, hp)), module


def task_states(base, spec):
    """Two different stand-in task states (every trainable parameter moved, as a training run would)."""
    states = []
    for seed in (1, 2):
        model, module = deployed(base, spec, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.requires_grad and "parametrizations." not in name:
                    p.add_(0.05 * torch.randn(p.shape, generator=gen))
        states.append({k: v.detach().clone() for k, v in module.task_state(model).items()})
    return states


@pytest.mark.parametrize(
    "method",
    ["full", "scratch", "shared-layers", "houlsby", "prefix", "prompt-tuning", "lora", "ia3", "loreft", "zero-shot"],
)
def test_switching_tasks_gives_exactly_the_model_loaded_with_the_new_state(tiny_base, method_specs, batch, method):
    spec = method_specs[method]
    a, b = task_states(tiny_base, spec)
    ids, mask = batch
    with torch.no_grad():
        on_a, module = deployed(tiny_base, spec, a)
        before = on_a(input_ids=ids, attention_mask=mask).logits
        switched = methods.switch(module, on_a, a, b, spec["hyperparameters"])
        after = switched(input_ids=ids, attention_mask=mask).logits
        direct = deployed(tiny_base, spec, b)[0](input_ids=ids, attention_mask=mask).logits
    if method != "zero-shot":
        assert not torch.allclose(before, direct, atol=1e-3), "the two task states should differ"
    if method in SWITCH_IS_ROUNDING:
        torch.testing.assert_close(after, direct, atol=1e-5, rtol=1e-5)
    else:
        assert torch.equal(after, direct)


def test_switch_refuses_a_state_of_another_shape(tiny_base, method_specs):
    spec = method_specs["houlsby"]
    a, _ = task_states(tiny_base, spec)
    model, module = deployed(tiny_base, spec, a)
    with pytest.raises(ValueError, match="lacks"):
        methods.switch(module, model, a, {"not.a.parameter": torch.zeros(1)}, spec["hyperparameters"])


def test_task_switch_job_times_and_checks_each_method(tiny_dir, tiny_base, method_specs, tmp_path):
    specs = {m: method_specs[m] for m in ("full", "lora")}
    paths = {}
    for m, spec in specs.items():
        paths[m] = []
        for task, state in zip("ab", task_states(tiny_base, spec)):
            path = tmp_path / m / task / "task_state.safetensors"  # beside its train.json, as the DAG writes it
            methods.save_state(state, path)
            io.write_json(path.parent / "train.json", {"task_state_sha256": identity.sha256_file(path)})
            paths[m].append(path)
    df = task_switch.run(tiny_dir, specs, paths, ["a", "b"], tmp_path / "task_switch.csv", repeats=2, cold_repeats=1)
    assert list(df.method) == ["full", "lora"] and (tmp_path / "task_switch.csv").is_file()
    assert (df.switch_ms > 0).all() and (df.cold_start_ms > 0).all()
    assert df.set_index("method").check_max_abs_logit_diff["full"] == 0
    assert df.set_index("method").check_max_abs_logit_diff["lora"] < 1e-4
    assert df.set_index("method").vs_full["full"] == 1.0


def test_task_switch_refuses_a_state_that_is_not_the_trained_one(tiny_dir, tiny_base, method_specs, tmp_path):
    """A stored state swapped or truncated after fine-tuning is caught by its sha256, not timed and scored."""
    spec = method_specs["lora"]
    paths = []
    for task, state in zip("ab", task_states(tiny_base, spec)):
        path = tmp_path / task / "task_state.safetensors"
        methods.save_state(state, path)
        io.write_json(path.parent / "train.json", {"task_state_sha256": identity.sha256_file(path)})
        paths.append(path)
    paths[1].write_bytes(paths[1].read_bytes()[:-8])  # truncated
    with pytest.raises(
        ValueError,
        match=r"b/task_state.safetensors: sha256 .* differs from .* its train.json "
        r"recorded: the stored state is truncated or was replaced",
    ):
        task_switch.run(tiny_dir, {"lora": spec}, {"lora": paths}, ["a", "b"], tmp_path / "ts.csv", 1, 1)
