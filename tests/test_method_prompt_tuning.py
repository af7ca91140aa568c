"""Prompt tuning (Lester et al. 2021): a soft prompt P prepended to the embedded input, P alone stored."""

import torch
from conftest import logits, perturb
from test_method_prefix import PROMPTS, assert_generation_matches_forward, generated_logits
from test_train import RECORDS

from peftbench import methods
from peftbench.model.assemble import method_model
from peftbench.stages import train


def test_prompt_tuning_count_init_exact_round_trip_and_generation(tiny_dir, method_specs, tmp_path, batch, tiny):
    spec, (base, _) = method_specs["prompt-tuning"], tiny
    n, hidden = spec["hyperparameters"]["num_virtual_tokens"], base.config.hidden_size
    model, tok, module, _ = method_model(tiny_dir, spec)
    assert methods.count_parameters(model)[0] == n * hidden == 100 * 64  # P: n x d, nothing else
    assert all(name.startswith("prompt_encoder.") for name, p in model.named_parameters() if p.requires_grad)
    # Sec. 3.2 sampled-vocab init: every row of P is the embedding of one of the 5,000 most common tokens
    prompt, vocab = model.prompt_encoder["default"].embedding.weight, base.get_input_embeddings().weight[:5000]
    assert (prompt[:, None, :] == vocab[None]).all(-1).any(-1).all()

    perturb(model)
    model.eval()
    length = batch[0].shape[1]
    assert logits(model, batch).shape[1] == n + length  # peft returns P's positions as well
    trained = model(input_ids=batch[0], attention_mask=batch[1], logits_to_keep=length).logits.detach()
    torch.testing.assert_close(trained, logits(model, batch)[:, n:], atol=1e-6, rtol=0)

    state = module.task_state(model)
    assert list(state) == ["prompt_embeddings"] and state["prompt_embeddings"].shape == (n, hidden)
    methods.save_state(state, tmp_path / "prompt.safetensors")
    loaded, tok, *_ = method_model(tiny_dir, spec, methods.load_state(tmp_path / "prompt.safetensors"))
    assert methods.count_parameters(loaded)[0] == 0
    assert torch.equal(
        loaded(input_ids=batch[0], attention_mask=batch[1], logits_to_keep=length).logits.detach(), trained
    )  # P is looked up as stored: bit-exact

    gen = assert_generation_matches_forward(loaded, tok, PROMPTS)
    with loaded.disable_adapter():
        _, base_gen = generated_logits(loaded, tok, PROMPTS)
    assert not torch.allclose(gen, base_gen)  # the prompt is used while generating


def test_train_loss_skips_the_virtual_positions(tiny_dir, method_specs):
    """train.target_loss keeps the last logits (logits_to_keep), so the n extra positions in front never
    meet a label: same value as cross-entropy over the real positions of the full output."""
    spec = method_specs["prompt-tuning"]
    model, tok, *_ = method_model(tiny_dir, spec)
    n = spec["hyperparameters"]["num_virtual_tokens"]
    ids, labels, mask = train.collate(train.encode(RECORDS[:3], tok, 64), tok.pad_token_id)
    with torch.no_grad():
        real = model(input_ids=ids, attention_mask=mask).logits[:, n:-1]
        reference = torch.nn.functional.cross_entropy(
            real.reshape(-1, real.size(-1)), labels[:, 1:].reshape(-1), ignore_index=-100
        )
        torch.testing.assert_close(train.target_loss(model, ids, labels, mask), reference)
