"""The papers' parameter and storage figures that peftbench.costs.paper_scale reproduces, each with the setting
the paper states, the paper's own closed form at that setting, and how we count it.

d = d_model, L = transformer layers. Sources (see /work/shared/DESIGN.md; LoRA's numbering is arXiv v2's):
Hu et al. 2021 (LoRA) Sec. 4.2, 5.1 (baselines and their |Theta|), 7.1, Tables 2-5, 11, 15, 18, App. D, F.2,
H.2; Li & Liang 2021 (Prefix-tuning) Sec. 6.1 and Table 6; Houlsby et al. 2019 Sec. 2.1 and Table 1;
Wu et al. 2024 (ReFT) Table 1."""

from dataclasses import dataclass, field


# ---- the papers' closed forms: each returns (value, the equation with the numbers substituted) ----
def lora(d, r, matrices):
    """LoRA Sec. 5.1: |Theta| = 2 x L_LoRA x d_model x r, L_LoRA = the number of adapted d x d matrices."""
    return 2 * matrices * d * r, f"2 × {matrices} × {d} × {r}"


def lora_rect(r, layers, shapes):
    """LoRA on non-square matrices: A (r x d_in) + B (d_out x r) = r (d_in + d_out) per matrix and layer."""
    per_layer = sum(r * (i + o) for i, o in shapes)
    return layers * per_layer, f"{layers} × {r} × (" + " + ".join(f"{i}+{o}" for i, o in shapes) + ")"


def adapter(d, r, adapters, layer_norms):
    """LoRA Sec. 5.1: |Theta| = L_Adpt x (2 d_model r + r + d_model) + 2 x L_LN x d_model."""
    return adapters * (
        2 * d * r + r + d
    ) + 2 * layer_norms * d, f"{adapters} × (2 × {d} × {r} + {r} + {d}) + 2 × {layer_norms} × {d}"


def houlsby(d, m, layers, layer_norms):
    """Houlsby Sec. 2.1: 2md + d + m per adapter, two per layer, plus the trained layer norms (2d each)."""
    return 2 * layers * (
        2 * m * d + d + m
    ) + 2 * d * layer_norms, f"2 × {layers} × (2 × {m} × {d} + {d} + {m}) + 2 × {d} × {layer_norms}"


def prelayer(d, layers, lp, li):
    """LoRA Sec. 5.1 (PreLayer): |Theta| = L x d_model x (l_p + l_i), the activations after every layer."""
    return layers * d * (lp + li), f"{layers} × {d} × ({lp} + {li})"


def preembed(d, lp, li):
    """LoRA Sec. 5.1 (PreEmbed): |Theta| = d_model x (l_p + l_i), the special tokens' embeddings."""
    return d * (lp + li), f"{d} × ({lp} + {li})"


def kv_prefix(d, layers, n):
    """Li & Liang Sec. 4.2-4.3, as released and as peft stores it: P = a key and a value vector per layer
    for each of the n prefix positions."""
    return n * layers * 2 * d, f"{n} × {layers} × 2 × {d}"


def gpt2_block(d):
    """One GPT-2 block: W_qkv 3d^2+3d, W_o d^2+d, W_fc 4d^2+4d, W_proj 4d^2+d, two LayerNorms 4d."""
    return 12 * d * d + 13 * d


def gpt2(vocab, positions, d, layers, tied):
    """Token and position embeddings, L blocks, final LayerNorm (+ an untied LM head)."""
    total = vocab * d + positions * d + layers * gpt2_block(d) + 2 * d + (0 if tied else vocab * d)
    head = "" if tied else f" + {vocab}·{d}"
    return total, f"({vocab} + {positions})·{d} + {layers}·(12·{d}² + 13·{d}) + 2·{d}{head}"


def top_blocks(d, k):
    """FT-Top2 (Li & Liang Sec. 5.2): the top k blocks; plus the final LayerNorm, which sits above them."""
    return k * gpt2_block(d) + 2 * d, f"{k} × (12·{d}² + 13·{d}) + 2·{d}"


def gpt2_biases(d, layers):
    """Every bias vector of a GPT-2 block: W_qkv 3d, W_o d, W_fc 4d, W_proj d, LayerNorms 2d = 11d; + ln_f."""
    return layers * 11 * d + d, f"{layers} × 11 × {d} + {d}"


def loreft(d, r, layers):
    """ReFT Sec. 3.1: per intervention R (r x d), W (r x d), b (r): 2rd + r."""
    return layers * (2 * r * d + r), f"{layers} × (2 × {r} × {d} + {r})"


# ---- methods with no directory under methods/ --------------------------------------------------------
def bitfit(model, hp):
    """Bias-only / BitFit (Zaken et al. 2021; LoRA Sec. 5.1): every weight frozen except the bias vectors."""
    from peftbench.methods import freeze

    freeze(model)
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.requires_grad_(True)
    return model


def bitfit_state(model):
    from peftbench.methods import trained_state

    return trained_state(model)


INLINE = {"bitfit": (bitfit, bitfit_state)}  # name -> (attach, task_state), the methods/ contract


@dataclass(frozen=True)
class Claim:
    source: str  # paper and table / section
    model: str  # a key of config/paper_architectures.yaml
    method: str  # the paper's name for the method
    paper: str  # the figure as printed: "0.35M", "2.1%", "350 GB"
    setting: str  # what the paper states (or, where it states nothing, what we solved for)
    count: str | None  # methods/<name>, an INLINE method, or None: the paper's formula is the count
    hp: dict = field(default_factory=dict)  # over the method's method.yaml and the architecture's method_hp
    formula: tuple | None = None  # (value, text) of the paper's closed form at `setting`
    split_qkv: bool = False  # GPT-2's fused c_attn split into W_q, W_k, W_v first (LoRA on W_q, W_v alone)
    of: str = "base"  # a percentage of: "base" | "base+trained" (peft's print) | a parameter-name prefix
    key: str = ""  # for RATIOS
    note: str = ""


@dataclass(frozen=True)
class Ratio:
    source: str
    model: str
    method: str
    paper: str
    setting: str
    numerator: str  # Claim.key of a storage claim
    denominator: str
    note: str = ""


def _houlsby_hp(size, placement="houlsby"):
    return {"size": size, "placement": placement, "train_norms": []}  # LoRA's count: L_LN = 0 for Adapter-H


QV = ["c_attn.q", "c_attn.v"]
GPT2M, GPT2L, GPT3 = (1024, 24), (1280, 36), (12288, 96)
ADAPTER_L = (
    "one adapter per block after the MLP, with its own LayerNorm (Lin et al. 2020; L_LN = L); "
    "bottleneck m solved from LoRA's formula: neither LoRA nor Li & Liang state it"
)
FROM_LI_LIANG = (
    "LoRA Table 3 rows marked * are quoted from Li & Liang 2021, who describe their prefix as "
    "'0.1% of the parameters': 0.1% × {base} = {tenth}. "
)

CLAIMS = [
    # ---- LoRA Table 3: GPT-2 medium / large on E2E -----------------------------------------------------
    Claim(
        "LoRA Table 3",
        "gpt2-medium",
        "FT",
        "354.92M",
        "every weight",
        "full",
        formula=gpt2(50257, 1024, *GPT2M, tied=True),
        note="GPT-2 medium (tied LM head) has 354,823,168 parameters; the printed 354.92M is 96,832 more, "
        "which is no whole number of d-sized vectors (Li & Liang's text says 345M).",
    ),
    Claim(
        "LoRA Table 3",
        "gpt2-medium",
        "Adapter-L",
        "0.37M",
        f"m = 6; {ADAPTER_L}",
        "houlsby",
        _houlsby_hp(6, "mlp_only"),
        adapter(1024, 6, 24, 24),
        note="m = 6 is the only integer within the printed rounding (m = 5: 319,608; m = 7: 417,960); "
        "Li & Liang call it 'Adapter (0.1%)'.",
    ),
    Claim(
        "LoRA Table 3",
        "gpt2-medium",
        "Adapter-L",
        "11.09M",
        f"m = 224; {ADAPTER_L}",
        "houlsby",
        _houlsby_hp(224, "mlp_only"),
        adapter(1024, 224, 24, 24),
        note="m = 224 gives 11,089,152 exactly ('Adapter (3%)' in Li & Liang).",
    ),
    Claim(
        "LoRA Table 3",
        "gpt2-medium",
        "Adapter-H",
        "11.09M",
        "two adapters per block (Houlsby), m = 112; layer norms not counted (LoRA's L_LN = 0 for Adapter-H); "
        "m not stated, solved from LoRA's formula",
        "houlsby",
        _houlsby_hp(112),
        adapter(1024, 112, 48, 0),
        note="No integer m gives 11.09M with 48 adapters: m = 112 gives 11,064,576, m = 113 11,162,928. "
        "11.09M is, to the digit, the Adapter-L m = 224 count above (24 adapters of width 224 = 48 of "
        "112), so the row seems to repeat that budget. With Houlsby's trained layer norms (Fig. 2, "
        "methods/houlsby's default) m = 112 gives 11,164,928.",
    ),
    Claim(
        "LoRA Table 3",
        "gpt2-medium",
        "FT-Top2",
        "25.19M",
        "the top 2 of 24 blocks (+ the final LayerNorm)",
        "shared-layers",
        {"top_blocks": 2},
        top_blocks(1024, 2),
        note="Without the final LayerNorm: 25,192,448, also 25.19M (microsoft/LoRA issue #148 asks).",
    ),
    Claim(
        "LoRA Table 3",
        "gpt2-medium",
        "PreLayer",
        "0.35M",
        "Li & Liang's prefix, length 5 for E2E (their Table 6); the stored P (K and V in every layer)",
        "prefix",
        {"num_virtual_tokens": 5, "encoder_hidden_size": 512},
        kv_prefix(1024, 24, 5),
        note=FROM_LI_LIANG.format(base="354.92M", tenth="0.355M") + "Their own footnote 7 gives 250K for "
        "E2E (row below), which is this count. Trained (P' + the MLP, dropped after training): our_trainable.",
    ),
    Claim(
        "LoRA Table 3",
        "gpt2-medium",
        "LoRA",
        "0.35M",
        "r_q = r_v = 4 on W_q, W_v, alpha 32 (Table 11)",
        "lora",
        {"r": 4, "alpha": 32, "target_modules": QV},
        lora(1024, 4, 2 * 24),
        split_qkv=True,
        note="2 × 48 × 1024 × 4 = 393,216 (= 0.39M): microsoft/LoRA issue #172. App. H.2 (Table 18): the GPT-2 "
        "hyperparameters were tuned on r = 4, 'which matches the parameter count of another baseline': "
        "the printed figure is PreLayer's 0.35M (0.1% of the model). Counted on W_q and W_v split out "
        "of GPT-2's fused c_attn; loralib's MergedLinear(enable_lora=[True, False, True]) has the same count.",
    ),
    Claim(
        "LoRA Table 3",
        "gpt2-large",
        "FT",
        "774.03M",
        "every weight",
        "full",
        formula=gpt2(50257, 1024, *GPT2L, tied=True),
    ),
    Claim(
        "LoRA Table 3",
        "gpt2-large",
        "Adapter-L",
        "0.88M",
        f"m = 8; {ADAPTER_L}",
        "houlsby",
        _houlsby_hp(8, "mlp_only"),
        adapter(1280, 8, 36, 36),
    ),
    Claim(
        "LoRA Table 3",
        "gpt2-large",
        "Adapter-L",
        "23.00M",
        f"m = 248; {ADAPTER_L}",
        "houlsby",
        _houlsby_hp(248, "mlp_only"),
        adapter(1280, 248, 36, 36),
    ),
    Claim(
        "LoRA Table 3",
        "gpt2-large",
        "PreLayer",
        "0.77M",
        "Li & Liang's prefix, length 5 (their E2E setting); the stored P",
        "prefix",
        {"num_virtual_tokens": 5, "encoder_hidden_size": 512},
        kv_prefix(1280, 36, 5),
        note=FROM_LI_LIANG.format(base="774.03M", tenth="0.774M") + "A length-5 prefix stores 460,800.",
    ),
    Claim(
        "LoRA Table 3",
        "gpt2-large",
        "LoRA",
        "0.77M",
        "r_q = r_v = 4 on W_q, W_v, alpha 32 (Table 11)",
        "lora",
        {"r": 4, "alpha": 32, "target_modules": QV},
        lora(1280, 4, 2 * 36),
        split_qkv=True,
        note="2 × 72 × 1280 × 4 = 737,280 (0.74M); as for GPT-2 M, the printed figure is PreLayer's (0.1%).",
    ),
    # ---- Li & Liang 2021: the prefix's own count ---------------------------------------------------------
    Claim(
        "Li & Liang 2021 fn. 7",
        "gpt2-medium",
        "Prefix (E2E)",
        "250K",
        "prefix length 5 (Table 6); stored P",
        "prefix",
        {"num_virtual_tokens": 5, "encoder_hidden_size": 512},
        kv_prefix(1024, 24, 5),
    ),
    Claim(
        "Li & Liang 2021 fn. 7",
        "gpt2-medium",
        "Prefix (DART)",
        "500K",
        "prefix length 10 (Table 6); stored P",
        "prefix",
        {"num_virtual_tokens": 10, "encoder_hidden_size": 512},
        kv_prefix(1024, 24, 10),
    ),
    # ---- LoRA Table 4: GPT-3 175B ------------------------------------------------------------------------
    Claim(
        "LoRA Table 4",
        "gpt3-175b",
        "FT",
        "175,255.8M",
        "every weight; GPT-3's shapes (Brown et al. Table 2.1)",
        "full",
        formula=gpt2(50257, 2048, *GPT3, tied=False),
        key="gpt3-full",
        note="Untied LM head (tied: 174,604,259,328, -0.37%). The remaining 34.0M (0.02%) is not a whole "
        "number of d-sized vectors; GPT-3's exact parameter list is unpublished.",
    ),
    Claim(
        "LoRA Table 4",
        "gpt3-175b",
        "BitFit",
        "14.2M",
        "every bias vector (no methods/ directory: inline)",
        "bitfit",
        formula=gpt2_biases(*GPT3),
        note="14.2M is 12 d L = 14,155,776 exactly, but a GPT-2/3 block has 11 d-sized bias vectors; the "
        "linear layers' biases alone are 9 d L = 10.6M, with the LayerNorm gains too 13 d L + 2d = 15.3M. "
        "The paper does not list which vectors it trains.",
    ),
    Claim(
        "LoRA Table 4",
        "gpt3-175b",
        "PreEmbed",
        "3.2M",
        "l_p = 256, l_i = 8 (App. D.4)",
        "prompt-tuning",
        {"num_virtual_tokens": 256 + 8},
        preembed(12288, 256, 8),
        note="peft prepends all 264 tokens (no infix); the count is the same.",
    ),
    Claim(
        "LoRA Table 4",
        "gpt3-175b",
        "PreLayer",
        "20.2M",
        "l_p = l_i = 8 (App. D.4)",
        None,
        formula=prelayer(12288, 96, 8, 8),
        note="LoRA's PreLayer replaces each layer's output activations at the special tokens; no method here "
        "does that (methods/prefix is Li & Liang's key/value prefix, which stores 2× as much: "
        "37,748,736), so the formula is the count. The paper's own formula gives 18.9M; Table 15's other "
        "PreLayer rows also sit 1-8% above it, with no common factor or constant.",
    ),
    Claim(
        "LoRA Table 4",
        "gpt3-175b",
        "Adapter-H",
        "7.1M",
        "r = 1 (Table 15); layer norms not counted",
        "houlsby",
        _houlsby_hp(1),
        adapter(12288, 1, 2 * 96, 0),
    ),
    Claim(
        "LoRA Table 4",
        "gpt3-175b",
        "Adapter-H",
        "40.1M",
        "r = 8 (Table 15); layer norms not counted",
        "houlsby",
        _houlsby_hp(8),
        adapter(12288, 8, 2 * 96, 0),
        note="Houlsby also trains the layer norms: +4,743,168 (2 per block and ln_f, 2d each).",
    ),
    Claim(
        "LoRA Table 4",
        "gpt3-175b",
        "LoRA",
        "4.7M",
        "r_v = 2 on W_v (Table 15, the row with Table 4's scores)",
        "lora",
        {"r": 2, "alpha": 2, "target_modules": ["c_attn.v"]},
        lora(12288, 2, 96),
        split_qkv=True,
        note="r_q = r_v = 1 has the same count (App. D.4 names both).",
    ),
    Claim(
        "LoRA Table 4",
        "gpt3-175b",
        "LoRA",
        "37.7M",
        "r_q = r_v = 8 (App. D.4, Table 15)",
        "lora",
        {"r": 8, "alpha": 8, "target_modules": QV},
        lora(12288, 8, 2 * 96),
        split_qkv=True,
        note="App. D.4's alternative 'r_q = r_k = r_v = r_o = 2' gives 18.9M; Table 15 lists r = 4 for 37.7M.",
    ),
    # ---- LoRA Sec. 4.2 / 7.1: GPT-3 storage ----------------------------------------------------------------
    Claim(
        "LoRA Sec. 7.1 / Table 5",
        "gpt3-175b",
        "LoRA",
        "18M",
        "r_q = r_v = 4: 'roughly 35MB if stored in FP16'",
        "lora",
        {"r": 4, "alpha": 4, "target_modules": QV},
        lora(12288, 4, 2 * 96),
        split_qkv=True,
        note="A budget in round numbers: Table 15 prints 18.8M for this setting (18,874,368 truncated, as "
        "its 301.9M for r = 64 is 301,989,888 truncated).",
    ),
    Claim(
        "LoRA Sec. 4.2",
        "gpt3-175b",
        "FT checkpoint",
        "350 GB",
        "every weight, fp16",
        "full",
        formula=gpt2(50257, 2048, *GPT3, tied=False),
        key="gpt3-full-bytes",
    ),
    Claim(
        "LoRA Sec. 4.2",
        "gpt3-175b",
        "LoRA checkpoint",
        "35 MB",
        "r = 4 on W_q, W_v, fp16",
        "lora",
        {"r": 4, "alpha": 4, "target_modules": QV},
        lora(12288, 4, 2 * 96),
        split_qkv=True,
        key="gpt3-lora-bytes",
        note="18,874,368 × 2 B = 37.7 MB (36.0 MiB): the paper's 35 MB is 350 GB / 10,000.",
    ),
    # ---- LoRA Table 2: RoBERTa on GLUE -----------------------------------------------------------------------
    Claim(
        "LoRA Table 2",
        "roberta-base",
        "FT",
        "125.0M",
        "every weight (RoBERTa's reported size)",
        "full",
        note="RobertaForCausalLM: the modules of the released RobertaForMaskedLM (encoder + LM head, decoder "
        "tied to the embedding); the encoder with a pooler instead: 124,645,632.",
    ),
    Claim(
        "LoRA Table 2",
        "roberta-base",
        "LoRA",
        "0.3M",
        "r_q = r_v = 8 (App. D.1)",
        "lora",
        {"r": 8, "alpha": 8, "target_modules": ["query", "value"]},
        lora(768, 8, 2 * 12),
        note="The classifier head, trained too, is not counted (nor by the paper).",
    ),
    Claim(
        "LoRA Table 2",
        "roberta-large",
        "FT",
        "355.0M",
        "every weight (RoBERTa's reported size)",
        "full",
        note="With the LM head, as for RoBERTa-base; the encoder with a pooler instead: 355,359,744.",
    ),
    Claim(
        "LoRA Table 2",
        "roberta-large",
        "LoRA",
        "0.8M",
        "r_q = r_v = 8 (App. D.1)",
        "lora",
        {"r": 8, "alpha": 16, "target_modules": ["query", "value"]},
        lora(1024, 8, 2 * 24),
    ),
    Claim(
        "LoRA Table 2",
        "roberta-large",
        "Adapter-H †",
        "6.0M",
        "Houlsby's setup, m = 64 (our assumption)",
        "houlsby",
        _houlsby_hp(64),
        adapter(1024, 64, 48, 0),
        note="The bottleneck sizes of Table 2's adapter rows are not legible in our copy. m = 64 gives 6.34M "
        "(m = 61 would give 6.05M); 6,343,680 / 2^20 = 6.05, so binary 'M' would also explain it "
        "(Adapter-P 3.0M: 3,171,840 / 2^20 = 3.02), unverified.",
    ),
    Claim(
        "LoRA Table 2",
        "roberta-large",
        "Adapter-H †",
        "0.8M",
        "m = 8 (our assumption)",
        "houlsby",
        _houlsby_hp(8),
        adapter(1024, 8, 48, 0),
    ),
    # ---- Houlsby et al. 2019 Table 1: BERT-large -------------------------------------------------------------
    Claim(
        "Houlsby Table 1",
        "bert-large",
        "Adapters (64)",
        "2.1%",
        "m = 64, two adapters per layer + every LayerNorm; % of all BERT-large parameters",
        "houlsby",
        {"size": 64},
        houlsby(1024, 64, 24, 49),
        note="The paper does not say what its percentages are of. Of all 335.1M parameters (embeddings, "
        "pooler): 1.92%; of the 330M it quotes (Sec. 3.2): 1.95%. The classifier head (1024 k + k) "
        "is left out.",
    ),
    Claim(
        "Houlsby Table 1",
        "bert-large",
        "Adapters (64)",
        "2.1%",
        "m = 64, two adapters per layer + every LayerNorm; % of the 24 transformer layers",
        "houlsby",
        {"size": 64},
        houlsby(1024, 64, 24, 49),
        of="encoder.layer.",
        note="Of the transformer layers (no embeddings, no pooler: 24 × (12 d² + 13 d) = 302,309,376) the "
        "count gives 2.13% (adapters alone 2.10%): the denominator that reproduces the paper's 2.1%.",
    ),
    # ---- ReFT Table 1: LLaMA-7B commonsense ------------------------------------------------------------------
    Claim(
        "ReFT Table 1",
        "llama-7b",
        "LoReFT",
        "0.031%",
        "rank 8, all 32 layers, f7+l7 positions, one intervention per layer (pyreft's --share_weights)",
        "loreft",
        {"rank": 8, "first": 7, "last": 7, "layers": "all", "share_weights": True},
        loreft(4096, 8, 32),
        note="Positions do not change the count. Rank 4 would give 0.016%; untied first/last interventions 0.062%.",
    ),
    Claim(
        "ReFT Table 1",
        "llama-7b",
        "LoRA",
        "0.826%",
        "r = 32 on q, k, v, up, down (the LLM-Adapters / DoRA setting ReFT quotes); % of base + LoRA",
        "lora",
        {"r": 32, "alpha": 64, "target_modules": ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]},
        lora_rect(32, 32, [(4096, 4096)] * 3 + [(4096, 11008), (11008, 4096)]),
        of="base+trained",
        note="56,098,816 is 0.8325% of the base model alone; of base + LoRA (peft's print_trainable_parameters) "
        "it is 0.8257%, the printed 0.826%.",
    ),
]

RATIOS = [
    Ratio(
        "LoRA Sec. 4.2",
        "gpt3-175b",
        "FT / LoRA checkpoint",
        "10,000×",
        "'reduced by roughly 10,000× (from 350GB to 35MB)', r = 4 on W_q, W_v, fp16",
        "gpt3-full-bytes",
        "gpt3-lora-bytes",
        note="'Roughly': within a factor 1.1 of 10,000, and within its one significant figure.",
    ),
]


def counted_methods():
    """The methods/<name> folders whose own code counts a claim (what the paper_scale rule depends on)."""
    return sorted({c.count for c in CLAIMS if c.count and c.count not in INLINE})
