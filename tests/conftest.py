import copy
import os
import shutil
import subprocess
import sys

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from peftbench import config
from peftbench.paths import ROOT  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs one pytest worker per core: one thread each
    torch.set_num_threads(1)
from peftbench.model import base_model  # noqa: E402

TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny randomly initialised Llama with the real SmolLM2 tokenizer, built by the base stage."""
    return base_model.build("tiny-random", tmp_path_factory.mktemp("base") / "tiny", TINY)


def tiny_runs(root, tiny_dir, seeds_of, evaluate=False):
    """root/tiny/{base_model, qa/<method>/seed<s>} and root/data/qa as the DAG lays them out: two real training
    steps per run (pipeline.finetune, the rule's code) at a learning rate that moves the weights visibly, then,
    with `evaluate`, the DAG's evaluation (lm-eval on 4 test examples). seeds_of: {method: [seeds]}."""
    from peftbench.stages import pipeline

    base = root / "tiny/base_model"
    shutil.copytree(tiny_dir, base)
    pipeline.build_data("qa", {"train": 8, "validation": 2, "test": 4}, root / "data/qa")
    cfg = config.load_profile(config.CONFIG / "config.yaml", config.CONFIG / "smoke.yaml")
    cfg["training"] = {**cfg["training"], "steps": 2, "checkpoint_every": 0}
    specs = config.discover_methods()
    for m, seeds in seeds_of.items():
        spec = {**specs[m], "training": {**specs[m].get("training", {}), "learning_rate": 3e-2}}
        for s in seeds:
            run = root / f"tiny/qa/{m}/seed{s}"
            state = run / "task_state.safetensors"
            pipeline.finetune(cfg, str(base), "qa", spec, s, root / "data/qa", state, run / "train.json")
            if evaluate:
                outs = [run / f for f in ("lm_eval.json", "samples.jsonl", "latency.json")]
                pipeline.evaluate_job(cfg, str(base), "qa", spec, state, root / "data/qa/test.jsonl", *outs)
    return cfg


@pytest.fixture
def tiny(tiny_dir):
    torch.manual_seed(0)
    return base_model.load(tiny_dir)


@pytest.fixture(scope="session")
def method_specs():
    return config.discover_methods()


@pytest.fixture
def batch(tiny):
    _, tok = tiny
    ids = tok(
        [
            "Translate English to Spanish.\nEnglish: In the beginning\nSpanish: En el principio",
            "Summarize the text in one sentence.\nText: A cat.\nSummary: A cat sat.",
        ],
        return_tensors="pt",
        padding=True,
    )
    return ids.input_ids, ids.attention_mask


# ---- a copy of the project, to edit and run apart from the checkout ------------------------------------
def copy_project(dest, subs=("workflow", "config", "methods", "tasks")):
    """The checkout's `subs` copied into `dest`, with the Snakefile when the workflow is among them."""
    if "workflow" in subs:
        shutil.copy(ROOT / "Snakefile", dest)
    for sub in subs:
        shutil.copytree(ROOT / sub, dest / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def snakemake(workdir, *args, configfiles=("config/smoke.yaml",)):
    """`python -m snakemake` in `workdir` on one core; its output, or the failure with its tail."""
    cmd = [sys.executable, "-m", "snakemake", *args, "--cores", "1", "--configfile", *configfiles]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-4000:]
    return res.stdout + res.stderr


@pytest.fixture
def project_methods():
    """The methods of `project`'s profile; a test module overrides this fixture to check others."""
    return ["lora", "zero-shot"]


@pytest.fixture
def project(tmp_path, project_methods):
    """A copy of methods/ and tasks/ and the default profile (its methods: `project_methods`), to break one thing."""
    copy_project(tmp_path, ("methods", "tasks"))
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg["methods"] = project_methods
    return tmp_path, cfg


# ---- what the method tests share -------------------------------------------------------------------------
def logits(model, batch):
    ids, mask = batch
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits


def perturb(model):
    """Stand-in for training: move every trainable parameter (LoRA's B and W_up start at zero)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))


def spec_with(spec, **hp):
    """A method spec with some hyperparameters changed (the spec given is left as it is)."""
    spec = copy.deepcopy(spec)
    spec["hyperparameters"].update(hp)
    return spec
