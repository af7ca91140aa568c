"""Prefix tuning (Li & Liang 2021): MLP-reparameterised training, prefix-only storage and inference."""

import torch
from conftest import logits, perturb

from peftbench import methods
from peftbench.model.assemble import method_model

PROMPTS = ["Translate English to Spanish.\nEnglish: In the beginning\nSpanish:", "Q: why?\nA:"]


def kv_dim(cfg):
    """Width of one layer's keys (or values): with grouped-query attention, n_kv_heads x head_dim."""
    return cfg.num_key_value_heads * cfg.hidden_size // cfg.num_attention_heads


def trained_count(cfg, hp):
    """P' (n x kv) + Linear(kv, H) + Linear(H, 2 L kv), biases included (Sec. 4.3)."""
    n, h, kv, out = (
        hp["num_virtual_tokens"],
        hp["encoder_hidden_size"],
        kv_dim(cfg),
        2 * cfg.num_hidden_layers * kv_dim(cfg),
    )
    return n * kv + (kv * h + h) + (h * out + out)


def stored_count(cfg, hp):
    """P: n x (L x 2 x kv), one key and one value vector per layer and prefix position."""
    return hp["num_virtual_tokens"] * cfg.num_hidden_layers * 2 * kv_dim(cfg)


def generated_logits(model, tok, prompts, new=3):
    """Greedy generate on a left-padded batch (as lm-eval runs it): its raw logits per step, per row."""
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(
            **enc,
            max_new_tokens=new,
            min_new_tokens=new,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=tok.pad_token_id,
        )
    tok.padding_side = "right"
    return out.sequences[:, enc.input_ids.shape[1] :], torch.stack(out.logits, 1)


def assert_generation_matches_forward(model, tok, prompts, new=3):
    """Every decoding step sees what the training forward sees: same logits as one forward pass over
    prompt + generated tokens, row by row without padding."""
    tokens, gen_logits = generated_logits(model, tok, prompts, new)
    for i, prompt in enumerate(prompts):
        ids = torch.cat([tok(prompt, return_tensors="pt").input_ids, tokens[i : i + 1]], 1)
        with torch.no_grad():
            ref = model(input_ids=ids, attention_mask=torch.ones_like(ids), logits_to_keep=new + 1).logits[0, :-1]
        torch.testing.assert_close(gen_logits[i], ref, atol=1e-4, rtol=1e-4)
    return gen_logits


def test_prefix_counts_prefix_only_state_exact_round_trip_and_generation(tiny_dir, method_specs, tmp_path, batch, tiny):
    spec, (base, tok) = method_specs["prefix"], tiny
    hp = spec["hyperparameters"]
    model, tok, module, _ = method_model(tiny_dir, spec)
    trainable, _ = methods.count_parameters(model)
    # tiny: 10*32 + (32*512+512) + (512*128+128)
    assert trainable == trained_count(base.config, hp) == 82_880
    assert all(n.startswith("prompt_encoder.") for n, p in model.named_parameters() if p.requires_grad)

    perturb(model)
    model.eval()
    trained = logits(model, batch)
    assert trained.shape[1] == batch[0].shape[1]  # a KV prefix adds no output positions
    assert not torch.allclose(trained, logits(base, batch))

    state = module.task_state(model)
    assert list(state) == ["prompt_embeddings"]  # P alone: no P', no MLP
    assert state["prompt_embeddings"].shape == (10, 2 * 2 * 32)  # n x (layers * 2 * kv_dim)
    assert methods.state_bytes(state) == 4 * stored_count(base.config, hp) == 4 * 1280
    methods.save_state(state, tmp_path / "prefix.safetensors")

    loaded, tok, *_ = method_model(tiny_dir, spec, methods.load_state(tmp_path / "prefix.safetensors"))
    encoder = {n: p.shape for n, p in loaded.named_parameters() if n.startswith("prompt_encoder.")}
    assert encoder == {"prompt_encoder.default.embedding.weight": (10, 128)}  # the MLP is gone
    assert methods.count_parameters(loaded)[0] == 0
    # P is stored as computed for one sequence and looked up at inference, not recomputed: bit-exact
    # for a batch of one. Training runs the MLP on P' expanded to the batch, a different GEMM shape,
    # so for batch 2 P differs in float order (~6e-7) and the logits by < 1e-6.
    one = (batch[0][:1], batch[1][:1])
    assert torch.equal(logits(loaded, one), logits(model, one))
    torch.testing.assert_close(logits(loaded, batch), trained, atol=1e-6, rtol=0)

    gen = assert_generation_matches_forward(loaded, tok, PROMPTS)
    with loaded.disable_adapter():
        _, base_gen = generated_logits(loaded, tok, PROMPTS)
    assert not torch.allclose(gen, base_gen)  # the prefix is used while generating
