import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from peftbench import config
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
