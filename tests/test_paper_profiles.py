"""The papers' setups as profiles (config/paper-*.yaml): they validate, `snakemake -n` builds the DAG the
README describes without touching the hub, and every selected method attaches to the paper's architecture
(built from its config on the meta device: shapes only, nothing downloaded) with the paper's parameter count."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_workflow import job_counts, workdir  # noqa: F401  (a copy of the workflow to dry-run in)
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig

from peftbench import config, methods
from peftbench.paths import ROOT

pytestmark = pytest.mark.slow

# profile files (overlaid on config/config.yaml, in order) -> tasks, methods, seeds
PROFILES = {
    "lora-e2e": (
        ["paper-lora-e2e.yaml"],
        ["e2e"],
        ["full", "adapter-l-370k", "adapter-l-11m", "adapter-h", "shared-layers", "prefix", "lora"],
        1,
    ),
    "lora-e2e-large": (
        ["paper-lora-e2e.yaml", "paper-lora-e2e-gpt2-large.yaml"],
        ["e2e"],
        ["full", "adapter-l-880k", "adapter-l-23m", "prefix", "lora"],
        1,
    ),
    "seed": (
        ["paper-seed.yaml"],
        ["xsum", "wmt16-en-ro", "squad"],
        sorted(p.parent.name for p in (ROOT / "methods").glob("*/method.yaml")),
        3,
    ),
    "seed-gpt2": (
        ["paper-seed.yaml", "paper-seed-gpt2-medium.yaml"],
        ["xsum", "wmt16-en-ro", "squad"],
        ["full", "scratch", "shared-layers", "prefix", "houlsby", "lora", "ia3", "prompt-tuning", "zero-shot"],
        3,
    ),
    "reft": (
        ["paper-reft-commonsense.yaml"],
        ["boolq", "piqa", "siqa", "hellaswag", "winogrande", "arc-easy", "arc-challenge", "openbookqa"],
        ["zero-shot", "prefix", "adapter-s", "lora", "loreft"],
        1,
    ),
    "peft-metamathqa": (
        ["paper-peft-metamathqa.yaml"],
        ["metamath-gsm8k"],
        ["full", "lora", "ia3", "prompt-tuning"],
        1,
    ),
}


# runs beyond `seeds`: LoRA Table 3's rows with a +- (LoRA, Adapter-H; LoRA and both Adapter-L on GPT-2 L) are means of 3 seeds;
# ReFT's LoReFT runs three seeds (pyreft examples/loreft/README.md), on eight tasks
EXTRA_SEEDS = {"lora-e2e": 2 * 2, "lora-e2e-large": 2 * 3, "reft": 2 * 8}


def load(files):
    return config.load_profile(config.CONFIG / "config.yaml", *[config.CONFIG / f for f in files])


@pytest.mark.parametrize("name", PROFILES)
def test_profile_validates_and_selects_the_papers_tasks_and_methods(name):
    files, tasks, wanted, n_seeds = PROFILES[name]
    cfg = load(files)
    specs = config.profile_methods(cfg)
    assert config.selected_tasks(cfg) == tasks
    assert sorted(config.selected_methods(cfg, specs)) == sorted(wanted)
    assert len(cfg["seeds"]) == n_seeds and cfg["device"] == "cuda"
    # LoRA's E2E runs: the repo's examples/NLG command has no --fp16; pyreft and peft's benchmark run bf16
    assert cfg["precision"] == ("fp32" if name.startswith("lora-e2e") else "bf16")
    for task in tasks:
        assert config.load_task(task)["source"]["type"] == "hf"
    res = {rule: config.rule_resources(cfg, rule) for rule in ("finetune", "evaluate", "base_model", "data")}
    assert res["finetune"]["gpu"] == 1 and res["evaluate"]["gpu"] == 1 and "gpu" not in res["data"]
    assert all(r["mem_mb"] > 0 and r["runtime"] > 0 for r in res.values())
    assert results_dirs_are_separate(cfg)


def results_dirs_are_separate(cfg):
    return cfg["results"].startswith("results/paper-") and cfg["reports"].startswith("reports/paper-")


def test_default_profile_declares_no_scheduler_resources():
    cfg = load([])
    assert all(config.rule_resources(cfg, r) == {} for r in ("finetune", "evaluate", "base_model", "data"))


@pytest.mark.parametrize("name", PROFILES)
def test_dry_run_builds_the_expected_dag_offline(workdir, name):  # noqa: F811  (the imported fixture)
    files, tasks, wanted, n_seeds = PROFILES[name]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "4", "--configfile", *[f"config/{f}" for f in files]]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "peftbench: WARNING" not in res.stdout + res.stderr  # no profile setting is shadowed
    cfg = load(files)
    specs = config.profile_methods(cfg)
    runs = len(tasks) * sum(len(config.run_seeds(cfg, m, specs[m])) for m in wanted)
    seed_free = [m for m in wanted if not config.seed_dependent(cfg, specs[m])]  # zero-shot: one run, any seeds
    assert runs == len(tasks) * (len(wanted) - len(seed_free)) * n_seeds + len(tasks) * len(
        seed_free
    ) + EXTRA_SEEDS.get(name, 0)
    counts = job_counts(res.stdout + res.stderr)
    ours = {
        "base_model": 1,
        "data": len(tasks),
        "finetune": runs,
        "evaluate": runs,
        "summary": 1,
        "report": 1,
        "all": 1,
    }
    if cfg.get("train_union"):  # ReFT Table 1: one training per (method, seed) on the union, evaluated per task
        trainings = sum(len(config.run_seeds(cfg, m, specs[m])) for m in wanted)
        ours.update(finetune=None, finetune_union=trainings, union_data=1, union_member=runs)
    assert {rule: counts.get(rule) for rule in ours} == ours
    assert all(n == 1 for rule, n in counts.items() if rule not in ours), counts  # one job per cost measurement


def meta_model(model_type, **arch):
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **arch))


GPT2_M = {"n_embd": 1024, "n_layer": 24, "n_head": 16}
GPT2_L = {"n_embd": 1280, "n_layer": 36, "n_head": 20}
LLAMA_32_3B = {  # meta-llama/Llama-3.2-3B config.json (rope scaling left out: no parameters)
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "num_hidden_layers": 28,
    "num_attention_heads": 24,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": True,
}
# (profile, architecture, method) -> parameters per task: trainable, or for prefix the stored prefix
# P = MLP(P') (what the table counts; the MLP trains and is dropped). Paper figures in the comments.
COUNTS = {
    ("lora-e2e", "gpt2", "full"): (GPT2_M, 354_823_168),  # LoRA Table 3: 354.92M
    ("lora-e2e", "gpt2", "adapter-l-370k"): (GPT2_M, 368_784),  # 0.37M
    ("lora-e2e", "gpt2", "adapter-l-11m"): (GPT2_M, 11_089_152),  # 11.09M
    ("lora-e2e", "gpt2", "adapter-h"): (GPT2_M, 11_066_576),  # 11.09M
    ("lora-e2e", "gpt2", "shared-layers"): (GPT2_M, 25_194_496),  # FT-Top2 25.19M
    ("lora-e2e", "gpt2", "prefix"): (GPT2_M, 245_760),  # PreLayer 0.35M; Li & Liang's length 5: 250K
    ("lora-e2e", "gpt2", "lora"): (GPT2_M, 393_216),  # 0.35M (q, v at r = 4 is 393,216 too)
    ("lora-e2e-large", "gpt2", "full"): (GPT2_L, 774_030_080),  # 774.03M
    ("lora-e2e-large", "gpt2", "adapter-l-880k"): (GPT2_L, 875_808),  # 0.88M
    ("lora-e2e-large", "gpt2", "adapter-l-23m"): (GPT2_L, 23_002_848),  # 23.00M
    ("lora-e2e-large", "gpt2", "prefix"): (GPT2_L, 460_800),  # 0.77M; length 5
    ("lora-e2e-large", "gpt2", "lora"): (GPT2_L, 737_280),  # 0.77M
    ("reft", "llama", "loreft"): ({}, 2_097_408),  # ReFT Table 1: 0.031% (measured per layer, below)
    ("reft", "llama", "lora"): ({}, 56_098_816),  # 0.826%
    ("reft", "llama", "adapter-s"): ({}, 67_108_864),  # 0.99%: 32 x 2 x 4096 x 256, no biases
    ("reft", "llama", "prefix"): ({}, 2_621_440),  # 0.039%
    # peft's MetaMathQA results/*.json num_trainable_params on Llama-3.2-3B (its config.json's shapes)
    ("peft-metamathqa", "llama", "full"): (LLAMA_32_3B, 3_212_749_824),  # full-finetuning--...-lr_0.00001
    ("peft-metamathqa", "llama", "lora"): (LLAMA_32_3B, 9_175_040),  # lora--llama-3.2-3B-rank32
    ("peft-metamathqa", "llama", "ia3"): (LLAMA_32_3B, 286_720),  # ia3--llama-3.2-3B-lr_0.001
    ("peft-metamathqa", "llama", "prompt-tuning"): (LLAMA_32_3B, 614_400),  # prompt_tuning--...-sample_vocab-lr_0.001
}


def attach(name, model_type, method, arch):
    cfg = load(PROFILES[name][0])
    spec = config.profile_methods(cfg)[method]
    model = meta_model(model_type, **arch) if model_type == "gpt2" else _meta_llama(**arch)
    return methods.load_module(spec["dir"]).attach(model, spec["hyperparameters"])


def _meta_llama(**arch):
    """LLaMA-7B: LlamaConfig's defaults (hidden 4096, 32 layers, FFN 11008, vocab 32000)."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(LlamaConfig(**arch))


def measured_count(key):
    """The method attached as the profile configures it, its parameters counted on the meta model."""
    name, model_type, method = key
    arch, scale = COUNTS[key][0], 1
    if method == "loreft":  # per-layer parameters; its orthogonal init costs seconds per layer on CPU
        arch, scale = {"num_hidden_layers": 2}, 16
    model = attach(name, model_type, method, arch)
    if method == "prefix":  # P = MLP(P'): its shape, on the meta device (no data is computed)
        tokens = model.prompt_tokens["default"].unsqueeze(0)
        return model.prompt_encoder["default"](tokens).numel()
    return methods.count_parameters(model)[0] * scale


@pytest.mark.parametrize("key", COUNTS, ids=lambda k: f"{k[0]}-{k[2]}")
def test_methods_attach_to_the_papers_architecture_with_its_parameter_count(key):
    assert measured_count(key) == COUNTS[key][1]


# ReFT Table 1's "Params (%)" column as printed: value and its decimals
REFT_TABLE_1 = {"loreft": (0.031, 3), "lora": (0.826, 3), "adapter-s": (0.99, 2), "prefix": (0.039, 3)}


@pytest.mark.parametrize("method", REFT_TABLE_1)
def test_reft_percentages_are_table_1s(method):
    """Measured on the attached model (not taken from the counts above), over one denominator fixed in advance:
    the parameters of the model being trained, base + method, as peft's print_trainable_parameters and
    LLM-Adapters (whose LoRA, Adapter-S and PrefT rows Table 1 quotes) print it. LoReFT's 0.031 is the same over
    the base alone (pyreft's print). Over the base alone LoRA would print 0.833, not 0.826."""
    base = sum(p.numel() for p in _meta_llama().parameters())
    assert base == 6_738_415_616  # LLaMA-7B
    n = measured_count(("reft", "llama", method))
    printed, decimals = REFT_TABLE_1[method]
    assert round(100 * n / (base + n), decimals) == printed, 100 * n / (base + n)


@pytest.mark.parametrize("method", PROFILES["seed-gpt2"][2])
def test_every_seed_method_attaches_to_gpt2_with_the_overlays_module_names(method):
    model = attach("seed-gpt2", "gpt2", method, GPT2_M)
    trainable = methods.count_parameters(model)[0]
    assert (trainable == 0) == (method == "zero-shot")


def test_variants_and_hyperparameter_overrides_layer_in_order():
    cfg = {
        "method_hyperparameters": {"houlsby": {"size": 16, "init_std": 0.5}, "adapter-x": {"size": 4}},
        "method_variants": {
            "adapter-x": {
                "from": "houlsby",
                "hyperparameters": {"placement": "mlp_only", "size": 8},
                "training": {"learning_rate": 0.5},
            }
        },
    }
    specs = config.profile_methods(cfg)
    parent, variant = specs["houlsby"]["hyperparameters"], specs["adapter-x"]
    assert parent["size"] == 16 and parent["placement"] == "houlsby"  # folder < override
    assert variant["hyperparameters"] == {**parent, "placement": "mlp_only", "size": 4}  # < variant < override
    assert variant["dir"] == specs["houlsby"]["dir"] and variant["name"] == "adapter-x"
    assert config.training_settings(cfg, variant)["learning_rate"] == 0.5
    assert config.selected_methods({"methods": ["adapter-x"]}, specs) == ["adapter-x"]


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({"method_variants": {"x": {"from": "hulsby"}}}, "method_variants.x.from': unknown method 'hulsby'"),
        (
            {"method_variants": {"lora": {"from": "houlsby"}}},
            "method_variants.lora': a method folder of that name exists",
        ),
        ({"method_hyperparameters": {"lroa": {"r": 4}}}, "method_hyperparameters': unknown method.*lroa"),
    ],
)
def test_profile_method_errors_name_the_field(cfg, message):
    with pytest.raises(config.ConfigError, match=message):
        config.profile_methods(cfg)


def test_profiles_overlay_key_by_key_and_null_drops_a_task(tmp_path):
    overlay = tmp_path / "p.yaml"
    overlay.write_text("tasks: {qa: null, summarization: {train: 5, validation: 1, test: 1}}\ntraining: {steps: 2}\n")
    cfg = config.load_profile(config.CONFIG / "config.yaml", overlay)
    assert config.selected_tasks(cfg) == ["summarization", "translation"]  # qa dropped, translation kept
    assert cfg["training"]["steps"] == 2 and cfg["training"]["batch_size"] == 4  # the default's other keys stay


def raw_training(files):
    """The profiles' own `training:` (config/config.yaml + files), before the schema's defaults."""
    cfg = {}
    for f in ["config.yaml", *files]:
        cfg = config.merge(cfg, config.load_yaml(config.CONFIG / f))
    return cfg.get("training", {})


@pytest.mark.parametrize("name", [*PROFILES, "default"])
def test_no_profile_training_value_is_shadowed_by_a_method_yaml(name):
    files = PROFILES[name][0] if name != "default" else []
    cfg = load(files)
    specs = config.profile_methods(cfg)
    selected = config.selected_methods(cfg, specs)
    assert config.shadowed_training(raw_training(files), specs, selected, cfg["method_training"]) == []


def test_a_shadowed_profile_value_is_reported_until_the_profile_says_which():
    specs = config.profile_methods({"method_variants": {"adapter-x": {"from": "houlsby"}}})
    lines = config.shadowed_training({"learning_rate": 2e-4, "steps": 9}, specs, ["lora", "adapter-x", "zero-shot"])
    assert len(lines) == 2  # zero-shot trains nothing (steps: 0)
    assert (
        "training.learning_rate=0.0002 does not reach method 'lora': methods/lora/method.yaml sets "
        "learning_rate=0.001" in lines[0]
    )
    assert "method_variants.adapter-x.training or methods/houlsby/method.yaml" in lines[1]
    chosen = {"lora": {"learning_rate": 2e-4}, "adapter-x": {"learning_rate": 1e-3}}
    assert config.shadowed_training({"learning_rate": 2e-4}, specs, ["lora", "adapter-x"], chosen) == []


LI_LIANG = (21035, 10, 5.0e-5, 0.0, 0.0, 0.0, 1.0, 0.1)  # their train_e2e.py (data2text) + HF Trainer
LI_LIANG_PREFIX = LI_LIANG[:-1] + (0.0,)  # prefix tuning's GPT-2 is frozen, without dropout
TABLE_11 = (26288, 8, 2.0e-4, 0.019, 0.01, 0.1, 0.0, 0.0)  # LoRA Table 11 + examples/NLG's command
E2E_ROWS = {
    "lora": TABLE_11,
    "adapter-h": TABLE_11,
    "full": LI_LIANG,
    "shared-layers": LI_LIANG,
    "adapter-l-370k": LI_LIANG,
    "adapter-l-11m": LI_LIANG,
    "prefix": LI_LIANG_PREFIX,
    "adapter-l-880k": TABLE_11,  # Table 3's GPT-2 L Adapter-L rows: the LoRA authors' runs (+-, no asterisk)
    "adapter-l-23m": TABLE_11,
}


@pytest.mark.parametrize("name", ["lora-e2e", "lora-e2e-large"])
def test_every_e2e_row_trains_at_its_sources_settings(name):
    """LoRA and Adapter-H: Table 11 (5 epochs at batch 8, 500 warm-up steps, label smoothing 0.1, no clipping,
    no dropout in the base model); the rows Table 3 quotes from Li & Liang: their code's settings (5 epochs at
    batch 10)."""
    files, _, wanted, _ = PROFILES[name]
    cfg = load(files)
    specs = config.profile_methods(cfg)
    n = cfg["tasks"]["e2e"]["train"]
    assert TABLE_11[0] == 5 * n // 8 and math.ceil(TABLE_11[3] * TABLE_11[0]) == 500  # train.schedule: ceil
    assert LI_LIANG[0] == 5 * -(-n // 10)
    keys = (
        "steps",
        "batch_size",
        "learning_rate",
        "warmup_ratio",
        "weight_decay",
        "label_smoothing",
        "max_grad_norm",
        "base_dropout",
    )
    for method in wanted:
        s = config.training_settings(cfg, specs[method])
        assert tuple(s[k] for k in keys) == E2E_ROWS[method], method


# config/paper-peft-metamathqa.yaml's code path at smoke size, on CPU: the profile with the tiny model, two
# steps and a few records of local copies of MetaMathQA and GSM8K (the hub's layouts, tests/test_hub_adapters.py).
PEFT_SMOKE = """\
results: results/peft-smoke
reports: reports/peft-smoke
model:
  name: llama-3.2-3b
  source: tiny-random
  tiny: {hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2}
device: cpu
threads: 1
costs: []
training: {steps: 2, checkpoint_every: 0, max_seq_len: 384}
evaluation: {batch_size: 4}
method_hyperparameters:
  prompt-tuning: {num_virtual_tokens: 4, init_vocab: 100}
"""


def test_peft_metamathqa_profile_runs_at_smoke_size_on_local_copies(workdir):  # noqa: F811
    import yaml
    from test_hub_adapters import metamath_gsm8k_copy
    from test_workflow import bare_shell

    from peftbench import io

    source = metamath_gsm8k_copy(workdir / "hub-peft", config.load_task("metamath-gsm8k"))
    overlay = yaml.safe_load(PEFT_SMOKE)
    overlay["tasks"] = {"metamath-gsm8k": {"train": 4, "validation": 2, "test": 4, "source": source}}
    (workdir / "config/peft-smoke.yaml").write_text(yaml.safe_dump(overlay))
    cmd = [str(Path(sys.executable).parent / "snakemake"), "--cores", "2", "--configfile"]
    cmd += ["config/paper-peft-metamathqa.yaml", "config/peft-smoke.yaml"]
    # a bare shell, but the PYTHONPATH a checkout beside the installed one sets (the sources under test)
    env = {**bare_shell(), **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-8000:]
    results = workdir / "results/peft-smoke"
    summary = __import__("pandas").read_csv(results / "summary.csv")
    assert sorted(summary.method) == ["full", "ia3", "lora", "prompt-tuning"]
    assert set(summary.task) == {"metamath-gsm8k"} and summary.score_acc.between(0, 100).all()
    for method, lr, wd in (
        ("full", 1e-5, 0.01),
        ("lora", 1e-4, 0.1),
        ("ia3", 1e-3, 0.01),
        ("prompt-tuning", 1e-3, 0.01),
    ):
        run = results / "llama-3.2-3b/metamath-gsm8k" / method / "seed0"
        trained = io.read_json(run / "train.json")
        assert trained["steps"] == 2 and trained["precision"] == "bf16" and trained["weights_dtype"] == "bf16"
        assert (trained["training"]["learning_rate"], trained["training"]["weight_decay"]) == (lr, wd)
        assert trained["training"]["schedule"] == "cosine"
        assert len(io.read_jsonl(run / "samples.jsonl")) == 4
    report = (workdir / "reports/peft-smoke/report.md").read_text()
    # the paper-vs-ours section sets peft's published accuracy and forgetting beside these runs
    assert "LoRA r32 47.84 > full FT lr 1e-5 47.16 > IA3 lr 1e-3 39.8 > prompt tuning 200 lr 1e-3 34.34" in report
    assert "full FT lr 1e-5 0.03 < LoRA r32 0.05 < IA3 lr 1e-3 0.0504 < prompt tuning 200 lr 1e-3 0.1451" in report
