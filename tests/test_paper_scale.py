"""Paper-scale accounting (peftbench.costs.paper_scale): the papers' architectures built on the meta device, the
methods attached through their own method.py, counted against the papers' figures and closed forms.
Meta tensors only (GPT-3 175B and LLaMA-7B cost no memory); about 20 s, most of it building GPT-3."""

import functools

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from peftbench.costs import paper_scale as ps
from peftbench.methods import load_module
from peftbench.papers import paper_figures as pc
from peftbench.paths import ROOT


def find(source, model, method, paper, of="base"):
    [i] = [
        i
        for i, c in enumerate(pc.FIGURES)
        if (c.source, c.model, c.method, c.paper, c.of) == (source, model, method, paper, of)
    ]
    return i


@functools.cache
def measured(i):
    return ps.measure(pc.FIGURES[i])


def test_parse_printed_reads_the_unit_and_the_rounding():
    assert ps.parse_printed("0.35M") == ("params", 350_000, pytest.approx(5_000))
    assert ps.parse_printed("175,255.8M") == ("params", pytest.approx(175_255.8e6), pytest.approx(0.05e6))
    assert ps.parse_printed("250K") == ("params", 250_000, pytest.approx(5_000))
    assert ps.parse_printed("2.1%") == ("% of base", 2.1, pytest.approx(0.05))
    assert ps.parse_printed("350 GB") == ("checkpoint bytes", 350e9, pytest.approx(5e9))
    assert ps.parse_printed("10,000×") == ("ratio", 10_000, pytest.approx(5_000))
    with pytest.raises(ValueError, match="paper figure"):
        ps.parse_printed("about 12")


def test_split_qkv_is_the_same_function_with_the_same_parameters():
    """W_q, W_k, W_v cut out of GPT-2's fused c_attn: identical logits and parameter count (real weights)."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        AutoConfig.for_model("gpt2", n_embd=32, n_layer=2, n_head=4, vocab_size=100, n_positions=16)
    ).eval()
    ids = torch.randint(0, 100, (2, 9))
    before, n_before = model(ids).logits, sum(p.numel() for p in model.parameters())
    ps.split_qkv(model)
    assert isinstance(model.transformer.h[0].attn.c_attn, ps.SplitQKV)
    assert sum(p.numel() for p in model.parameters()) == n_before
    torch.testing.assert_close(model(ids).logits, before, rtol=1e-5, atol=1e-5)


def test_lora_r4_on_wq_wv_of_gpt2_medium_is_393216():
    """LoRA Table 3 / Table 11: r_q = r_v = 4 on GPT-2 M: 2 x (24 x 2) x 1024 x 4 = 393,216, printed 0.35M."""
    figure = pc.FIGURES[find("LoRA Table 3", "gpt2-medium", "LoRA", "0.35M")]
    model = ps.split_qkv(ps.build("gpt2-medium"))
    lora = load_module(ROOT / "methods" / "lora")
    with torch.device("meta"):
        model = lora.attach(model, ps.method_hp("lora", {}, figure.hp))
    trained = {n: tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad}
    assert len(trained) == 24 * 2 * 2  # A and B on W_q and W_v of 24 blocks
    assert all(".c_attn.q.lora_" in n or ".c_attn.v.lora_" in n for n in trained)
    assert set(trained.values()) == {(4, 1024), (1024, 4)}
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 393_216
    m = measured(find("LoRA Table 3", "gpt2-medium", "LoRA", "0.35M"))
    assert m["trainable"] == m["stored"] == 393_216 == pc.lora(1024, 4, 48)[0]
    assert m["bytes"] == 393_216 * 4  # fp32, as GPT-2 is released


def test_the_175b_meta_model_has_gpt3s_parameter_count():
    model = ps.build("gpt3-175b")
    params = list(model.parameters())
    assert all(p.device.type == "meta" for p in params)  # shapes only: no memory
    n = sum(p.numel() for p in params)
    assert n == 175_221_817_344 == pc.gpt2(50257, 2048, 12288, 96, tied=False)[0]
    assert abs(n - 175_255.8e6) / 175_255.8e6 < 3e-4  # LoRA Table 4 prints 175,255.8M


TABLE4 = [c for c in pc.FIGURES if c.source == "LoRA Table 4"]


@pytest.mark.parametrize("figure", TABLE4, ids=lambda c: f"{c.method}-{c.paper}")
def test_lora_table4_closed_forms_against_the_printed_figures(figure):
    """The paper's own closed form at the setting it states, against the printed figure: within the rounding
    for PreEmbed, both Adapter-H and both LoRA rows; FT, BitFit and PreLayer differ by what the notes say."""
    _, printed, half = ps.parse_printed(figure.paper)
    value = figure.formula[0]
    off = {"FT": 175_221_817_344, "BitFit": 96 * 11 * 12288 + 12288, "PreLayer": 96 * 12288 * 16}
    if figure.method in off:
        assert value == off[figure.method] and abs(value - printed) > half
    else:
        assert abs(value - printed) <= half


@pytest.mark.parametrize("method, paper", [("FT", "175,255.8M"), ("BitFit", "14.2M"), ("Adapter-H", "7.1M")])
def test_lora_table4_counted_by_the_methods_at_gpt3_scale(method, paper):
    """methods/full, the inline BitFit and methods/houlsby on the 175B meta model give the closed form."""
    figure = find("LoRA Table 4", "gpt3-175b", method, paper)
    m = measured(figure)
    assert m["trainable"] == m["stored"] == pc.FIGURES[figure].formula[0]


def test_gpt3_storage_350gb_to_35mb():
    """Sec. 4.2: fp16 checkpoints, every weight vs LoRA r = 4 on W_q, W_v (split from c_attn, through peft)."""
    full = measured(find("LoRA Sec. 4.2", "gpt3-175b", "FT checkpoint", "350 GB"))
    lora = measured(find("LoRA Sec. 4.2", "gpt3-175b", "LoRA checkpoint", "35 MB"))
    assert lora["trainable"] == lora["stored"] == 18_874_368 == pc.lora(12288, 4, 2 * 96)[0]
    assert full["bytes"] == 2 * 175_221_817_344 and abs(full["bytes"] - 350e9) <= 5e9
    assert lora["bytes"] == 37_748_736  # 37.7 MB, printed "35MB"
    assert 9_000 < full["bytes"] / lora["bytes"] < 10_000  # "roughly 10,000x": 9,284x


def test_houlsby_bert_large_size_64():
    """Houlsby Sec. 2.1 / Fig. 2: 2md + d + m per adapter, two per layer, and the layer norms (2d each; 49 in
    BERT-large: two per layer and the embeddings'): 2 x 24 x (2 x 64 x 1024 + 1024 + 64) + 49 x 2048.
    The denominator is fixed before looking at the paper's figure: the whole pre-trained model, as every other
    percentage here. That gives 1.9%, and the table says the printed 2.1% is not matched (within_rounding False);
    2.1% only comes out over the transformer layers alone, a denominator chosen after the fact, which the second
    figure row records as such and is not used to call the figure reproduced."""
    closed = 2 * 24 * (2 * 64 * 1024 + 1024 + 64) + 49 * 2 * 1024
    m = measured(find("Houlsby Table 1", "bert-large", "Adapters (64)", "2.1%"))
    assert m["stored"] == m["trainable"] == closed == 6_444_032
    assert m["denominator"] == m["base"] == 335_141_888  # BERT-large with its pooler, counted from the model
    assert round(100 * m["stored"] / m["base"], 1) == 1.9
    figure = pc.FIGURES[find("Houlsby Table 1", "bert-large", "Adapters (64)", "2.1%")]
    row = ps.table(figures=[figure], ratios=[]).iloc[0]
    assert row.our_value == pytest.approx(100 * closed / 335_141_888) and not row.within_rounding


def test_loreft_llama7b_is_rank_8_with_one_intervention_per_layer():
    """ReFT Table 1: 0.031% of LLaMA-7B = rank 8, 32 layers, 2 r d + r each; rank 4 or untied
    first/last interventions would print 0.016% / 0.062%."""
    m = measured(find("ReFT Table 1", "llama-7b", "LoReFT", "0.031%"))
    assert m["base"] == 6_738_415_616
    assert m["trainable"] == m["stored"] == 32 * (2 * 8 * 4096 + 8) == 2_097_408
    assert round(100 * m["stored"] / m["base"], 3) == 0.031
    assert round(100 * pc.loreft(4096, 4, 32)[0] / m["base"], 3) == 0.016
    assert round(100 * pc.loreft(4096, 8, 64)[0] / m["base"], 3) == 0.062
