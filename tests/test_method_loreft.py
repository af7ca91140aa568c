"""LoReFT (Wu et al. 2024, Sec. 3.1 eq. 2): Phi(h) = h + R^T (W h + b - R h) on the residual stream at the
first p / last s prompt positions only. Tiny random Llama (d=64, 2 layers): seconds."""

import copy

import pytest
import torch
from test_train import RECORDS, settings

from peftbench import config, methods
from peftbench.data import build
from peftbench.model.assemble import method_model
from peftbench.stages import evaluate, train

PROMPTS = [
    "Translate English to Spanish.\nEnglish: In the beginning God created\nSpanish:",
    "Summarize.\nText: A cat.\nSummary:",
    "Hi",
]


def spec_with(method_specs, **hp):
    spec = copy.deepcopy(method_specs["loreft"])
    spec["hyperparameters"].update(hp)
    return spec


def setup(tiny_dir, spec, state=None):
    model, tok, module, _ = method_model(tiny_dir, spec, state)
    return model, tok, module


def perturb(model):
    """Stand-in for training: move W, b and R (R to another matrix with orthonormal rows, assigned through
    the parametrisation so its +-1 sign diagonal stays exact, as AdamW without weight decay keeps it)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for f in model.loreft.values():
            f.W.weight.add_(0.1 * torch.randn_like(f.W.weight))
            f.W.bias.add_(0.1 * torch.randn_like(f.W.bias))
            q, _ = torch.linalg.qr((f.R.weight + 0.3 * torch.randn_like(f.R.weight)).t())
            f.R.weight = q.t().contiguous()


def closed_form(d, r, n_layers, interventions_per_layer=1):
    """R (r x d) + W (r x d) + b (r) per intervention."""
    return (2 * r * d + r) * n_layers * interventions_per_layer


def orthonormal_error(model):
    errs = []
    for f in model.loreft.values():
        R = f.R.weight.detach().double()
        errs.append((R @ R.t() - torch.eye(R.shape[0], dtype=R.dtype)).abs().max().item())
    return max(errs)


def capture(model, layer=0):
    """Record the (intervened) output of decoder layer `layer`: registered after LoReFT's hook, so it
    sees what the next layer receives."""
    seen = []
    handle = model.model.layers[layer].register_forward_hook(lambda m, a, o: seen.append(o.detach().clone()))
    return seen, handle


def expected_positions(valid_row, first, last):
    idx = [t for t, v in enumerate(valid_row) if v]
    return set(idx[:first]) | set(idx[max(len(idx) - last, 0) :])


def test_trainable_parameters_are_the_interventions_with_orthonormal_R(tiny_dir, method_specs, tiny):
    base, _ = tiny
    d, n_layers = base.config.hidden_size, base.config.num_hidden_layers
    model, tok, module = setup(tiny_dir, method_specs["loreft"])
    trainable, total = methods.count_parameters(model)
    assert trainable == closed_form(d, 8, n_layers) == 2064  # (2*8*64 + 8) * 2
    assert total - trainable == sum(p.numel() for p in base.parameters())
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(n.startswith("loreft.") for n in names) and len(names) == 3 * n_layers
    assert orthonormal_error(model) < 1e-5

    # a few optimiser steps through the shared loss: R moves, its rows stay orthonormal
    R0 = model.loreft["0"].R.weight.detach().clone()
    ids, labels, mask = train.collate(train.encode(RECORDS[:4], tok, 64), tok.pad_token_id)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0)  # as method.yaml's training
    model.train()
    for _ in range(3):
        train.target_loss(model, ids, labels, mask).backward()
        opt.step()
        opt.zero_grad()
    assert not torch.allclose(model.loreft["0"].R.weight, R0)
    assert orthonormal_error(model) < 1e-5
    # weight decay would zero the parametrisation's +-1 sign diagonal (R -> 0): refused loudly
    train.target_loss(model, ids, labels, mask).backward()
    torch.optim.AdamW(params, lr=1e-2, weight_decay=0.01).step()
    with pytest.raises(RuntimeError, match="weight_decay"):
        train.target_loss(model, ids, labels, mask)

    hp = method_specs["loreft"]["hyperparameters"]
    one_layer = module.attach(copy.deepcopy(base), {**hp, "layers": [1]})
    assert methods.count_parameters(one_layer)[0] == closed_form(d, 8, 1) == 1032
    untied = module.attach(copy.deepcopy(base), {**hp, "share_weights": False, "rank": 4})
    assert methods.count_parameters(untied)[0] == closed_form(d, 4, n_layers, 2) == 2 * 2 * (2 * 4 * 64 + 4)
    assert sorted(untied.loreft) == ["0_first", "0_last", "1_first", "1_last"]
    with pytest.raises(ValueError, match="layers"):
        module.attach(copy.deepcopy(base), {**hp, "layers": [2]})


def test_position_masks_first_last_overlap_and_left_padding():
    from peftbench.methods import load_module

    module = load_module(config.discover_methods()["loreft"]["dir"])
    valid = torch.tensor(
        [
            [1, 1, 1, 1, 1, 1, 1, 1],  # 8 prompt tokens: first 2 + last 3
            [0, 0, 0, 0, 0, 1, 1, 1],  # left-padded, 3 tokens < 2 + 3: overlap
            [1, 1, 1, 1, 0, 0, 0, 0],
        ]
    )  # right-padded
    in_first, in_last = module.position_masks(valid, 2, 3)
    assert not (in_first & in_last).any(), "a position is intervened on twice"
    union = in_first | in_last
    for row in range(3):
        assert set(torch.nonzero(union[row]).flatten().tolist()) == expected_positions(valid[row].tolist(), 2, 3)
    assert in_first[1].tolist() == [0, 0, 0, 0, 0, 1, 1, 0]


def test_only_first_and_last_prompt_positions_change_in_training(tiny_dir, method_specs, tiny):
    """Right-padded training batch (PROMPT_LENGTHS set): at the first intervened layer, every position
    outside the first p / last s prompt positions equals the base model's hidden state exactly."""
    base, tok = tiny
    p, s = 2, 3
    model, *_ = setup(tiny_dir, spec_with(method_specs, first=p, last=s))
    ids, labels, mask = train.collate(
        train.encode(RECORDS[:3] + [{"id": "x", "prompt": "Hi", "target": "yo"}], tok, 64), tok.pad_token_id
    )
    prompt_lengths = (labels != -100).int().argmax(1)
    outs = []
    for m in (base, model):
        seen, handle = capture(m)
        with torch.no_grad():
            train.target_loss(m, ids, labels, mask)
        handle.remove()
        outs.append(seen[0])
    changed = (outs[0] != outs[1]).any(-1)
    for i, length in enumerate(prompt_lengths.tolist()):
        want = expected_positions([t < length for t in range(ids.shape[1])], p, s)
        assert set(torch.nonzero(changed[i]).flatten().tolist()) == want, f"row {i} (prompt {length} tokens)"
    assert model._loreft_controller.masks is None  # nothing left over after the forward


def test_decoding_steps_are_never_intervened_on(tiny_dir, method_specs, tiny):
    _, tok = tiny
    model, *_ = setup(tiny_dir, method_specs["loreft"])
    perturb(model)
    ctl = model._loreft_controller
    enc = tok(PROMPTS[0], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model(**enc, use_cache=True)
        ctl.enabled = False
        plain = model(**enc, use_cache=True)
        ctl.enabled = True
        assert not torch.allclose(out.logits, plain.logits), "the intervention does nothing at prefill"
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        step_mask = torch.cat([enc.attention_mask, torch.ones_like(nxt)], 1)
        cache_copy = copy.deepcopy(out.cache)
        with_hooks = model(input_ids=nxt, attention_mask=step_mask, cache=out.cache, use_cache=True).logits
        ctl.enabled = False
        without = model(input_ids=nxt, attention_mask=step_mask, cache=cache_copy, use_cache=True).logits
        ctl.enabled = True
    assert torch.equal(with_hooks, without)

    # through generate: only the prefill call (the whole prompt) carries position masks
    calls = []
    handle = model.model.layers[0].register_forward_hook(
        lambda m, a, o: calls.append((o.shape[1], ctl.masks is not None))
    )
    model.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    handle.remove()
    assert calls[0] == (enc.input_ids.shape[1], True) and calls[1:] == [(1, False)] * 3


def test_left_padded_batch_intervenes_on_each_rows_own_prompt(tiny_dir, method_specs, tiny):
    base, tok = tiny
    model, *_ = setup(tiny_dir, method_specs["loreft"])
    perturb(model)
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    assert (enc.attention_mask[:, 0] == 0).any(), "the batch must contain left padding"
    # exact position set at the first layer, against the base model on the same padded batch
    outs = []
    for m in (base, model):
        seen, handle = capture(m)
        with torch.no_grad():
            logits = m(**enc, use_cache=True).logits
        handle.remove()
        outs.append((seen[0], logits))
    changed = (outs[0][0] != outs[1][0]).any(-1)
    for i in range(len(PROMPTS)):
        assert set(torch.nonzero(changed[i]).flatten().tolist()) == expected_positions(
            enc.attention_mask[i].tolist(), 7, 7
        )
    # each padded row behaves as the same prompt run alone
    for i, prompt in enumerate(PROMPTS):
        alone = tok(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            ref = model(**alone).logits[0, -1]
        torch.testing.assert_close(outs[1][1][i, -1], ref, atol=1e-4, rtol=1e-4)


def test_save_load_reproduces_logits_exactly(tiny_dir, method_specs, tmp_path, batch):
    spec = method_specs["loreft"]
    model, tok, module = setup(tiny_dir, spec)
    perturb(model)
    model.eval()
    ids, mask = batch
    with torch.no_grad():
        trained = model(input_ids=ids, attention_mask=mask).logits
    state = module.task_state(model)
    assert len(state) == 3 * 2 and methods.state_bytes(state) == 2064 * 4
    methods.save_state(state, tmp_path / "loreft.safetensors")
    loaded, *_ = setup(tiny_dir, spec, methods.load_state(tmp_path / "loreft.safetensors"))
    assert methods.count_parameters(loaded)[0] == 0
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids, attention_mask=mask).logits, trained)
    enc = tok(PROMPTS[0], return_tensors="pt", add_special_tokens=False)
    gen = dict(max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert torch.equal(loaded.generate(**enc, **gen), model.generate(**enc, **gen))

    with pytest.raises(ValueError, match="missing"):
        setup(tiny_dir, spec, {k: v for k, v in state.items() if k != "1.W.bias"})
    with pytest.raises(ValueError, match="unexpected"):
        setup(tiny_dir, spec_with(method_specs, layers=[0]), state)


def test_a_few_steps_lower_the_validation_loss(tiny_dir, method_specs):
    model, tok, _ = setup(tiny_dir, method_specs["loreft"])
    stats = train.train(model, tok, RECORDS, RECORDS[:4], settings(), seed=0)
    assert stats["val_loss_after"] < stats["val_loss_before"]
    assert orthonormal_error(model) < 1e-5


def test_lm_eval_runs_on_a_loaded_model(tiny_dir, method_specs, tmp_path):
    spec = method_specs["loreft"]
    model, _, module = setup(tiny_dir, spec)
    perturb(model)
    loaded, tok, _ = setup(tiny_dir, spec, module.task_state(model))
    task = config.load_task("qa")
    build.build(task, {"train": 4, "validation": 2, "test": 2}, tmp_path)
    ctl, calls = loaded._loreft_controller, []
    handle = loaded.model.layers[0].register_forward_hook(
        lambda m, a, o: calls.append((o.shape[1], ctl.masks is not None))
    )
    results, samples = evaluate.run(loaded, tok, task["dir"], tmp_path / "test.jsonl", batch_size=2)
    handle.remove()
    assert "f1" in evaluate.scores(results, "qa") and len(samples["peftbench_qa"]) == 2
    assert calls and calls[0][0] > 1 and calls[0][1], "the prompt (prefill) was not intervened on"
    assert all(not on for length, on in calls if length == 1), "a decoding step was intervened on"


def test_intervened_positions_are_eq_2_number_by_number(tiny_dir, method_specs, tiny):
    """At each intervened position of layer 0, the output is h + R^T (W h + b - R h) with h the base model's
    hidden state there (eq. 2), computed here from R, W, b by hand in float64; elsewhere it is h."""
    base, tok = tiny
    model, *_ = setup(tiny_dir, spec_with(method_specs, first=2, last=2))
    perturb(model)
    ids, labels, mask = train.collate(train.encode(RECORDS[:2], tok, 64), tok.pad_token_id)
    outs = []
    for m in (base, model):
        seen, handle = capture(m)
        with torch.no_grad():
            train.target_loss(m, ids, labels, mask)
        handle.remove()
        outs.append(seen[0].double())
    h, got = outs
    f = model.loreft["0"]
    R, W, b = (t.detach().double() for t in (f.R.weight, f.W.weight, f.W.bias))
    phi = h + (h @ W.T + b - h @ R.T) @ R  # h + R^T (W h + b - R h), row vectors
    changed = (got != h).any(-1)
    assert changed.sum() == 2 * 4  # f2 + l2 prompt positions in each row
    torch.testing.assert_close(got[changed], phi[changed], rtol=1e-5, atol=1e-5)
    assert torch.equal(got[~changed], h[~changed])
    assert not torch.allclose(phi[changed], h[changed], atol=1e-3)  # the intervention is not the identity
