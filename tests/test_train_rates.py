"""train.json's training rates (issue 19): tokens/s and achieved GFLOP/s count the trained (non-padding) tokens
over the training loop's own time, checkpoint writes left out; written by the fine-tuning job itself."""

import time

import pytest
from test_run_identity import data, finetune, profile
from test_train import RECORDS, settings

from peftbench.model import flops
from peftbench.model.assemble import method_model
from peftbench.stages import checkpoint, train


@pytest.mark.parametrize("method", ["full", "lora"])
def test_train_json_rates_are_tokens_and_flops_over_the_loop_time(
    tiny_dir, method_specs, tmp_path, monkeypatch, method
):
    save = checkpoint.Checkpoints.save

    def slow_save(self, *args):  # a checkpoint write that takes visible time: in the wall time, not the loop's
        save(self, *args)
        time.sleep(0.5)

    monkeypatch.setattr(checkpoint.Checkpoints, "save", slow_save)
    # profile(): 6 steps of batch 4, a checkpoint every 2 steps: two writes (none after the last step)
    tr = finetune(tiny_dir, profile(), method_specs[method], data(tmp_path / "data"), tmp_path / "run")
    assert tr["train_tokens"] > 0 and tr["tokens_per_s"] > 0 and tr["gflop_per_s"] > 0
    assert tr["wall_time_s"] - tr["train_loop_s"] >= 2 * 0.5  # the two checkpoint writes
    # rel=1e-2: train_loop_s is rounded to ms, the rates were computed before rounding
    assert tr["tokens_per_s"] == pytest.approx(tr["train_tokens"] / tr["train_loop_s"], rel=1e-2)
    assert tr["step_time_s"] == pytest.approx(tr["train_loop_s"] / 6, rel=1e-2)
    assert tr["train_flops"] == flops.train_flops(tr["total_params"], tr["trainable_params"], tr["train_tokens"])
    assert tr["gflop_per_s"] == pytest.approx(tr["train_flops"] / tr["train_loop_s"] / 1e9, rel=1e-2)


def test_trained_tokens_are_the_batches_non_padding_tokens(tiny_dir, method_specs):
    model, tok, *_ = method_model(tiny_dir, method_specs["lora"])
    stats = train.train(model, tok, RECORDS, [], settings(steps=3), seed=0)
    encoded = train.encode(RECORDS, tok, 384)
    plan = train.batches(len(encoded), 4, 3, seed=0)
    assert stats["train_tokens"] == sum(len(encoded[i][0]) for idx in plan for i in idx)
    padded = sum(train.collate([encoded[i] for i in idx], tok.pad_token_id)[0].numel() for idx in plan)
    assert stats["train_tokens"] <= padded


def test_cosine_schedule_is_transformers_after_the_warm_up():
    """training.schedule: cosine (peft's MetaMathQA benchmark): the same warm-up, then transformers'
    get_cosine_schedule_with_warmup decay; absent, the linear decay is unchanged."""
    import math

    import torch
    from transformers import get_cosine_schedule_with_warmup

    from peftbench.stages import train

    def rates(make, steps=20):
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched, out = make(opt), []
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    ours = rates(lambda o: train.schedule(o, 20, 0.1, "cosine"))
    theirs = rates(lambda o: get_cosine_schedule_with_warmup(o, num_warmup_steps=2, num_training_steps=20))
    assert ours[:2] == [0.5, 1.0]  # the harness's warm-up: (s + 1) / warmup
    assert ours[2:] == pytest.approx(theirs[2:]) and ours[11] == pytest.approx(0.5 * (1 + math.cos(math.pi * 9 / 18)))
    linear = rates(lambda o: train.schedule(o, 20, 0.1))
    assert linear == pytest.approx([0.5, 1.0] + [(20 - s) / 18 for s in range(2, 20)])
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        train.schedule(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))]), 20, 0.1, "step")
