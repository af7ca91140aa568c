"""Checkpoint/resume inside one process: a run resumed from a checkpoint ends bit for bit where an
uninterrupted run ends (same losses, same trained weights). The SIGKILL test through the real
`snakemake` command is in test_faults.py."""

import functools
import json

import pytest
import torch
from test_train import RECORDS, settings

from peftbench.model.assemble import method_model
from peftbench.stages import checkpoint, train


def run(tiny_dir, spec, folder, steps=6, every=2, fingerprint="f"):
    model, tok, *_ = method_model(tiny_dir, spec)
    ckpt = checkpoint.Checkpoints(folder, every, fingerprint)
    stats = train.train(model, tok, RECORDS, RECORDS[:4], settings(steps=steps), seed=0, checkpoints=ckpt)
    return stats, {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("method", ["full", "lora"])  # lora: dropout, so the RNG state matters
def test_resumed_run_equals_uninterrupted_run(tiny_dir, method_specs, tmp_path, method):
    spec = method_specs[method]
    reference, ref_weights = run(tiny_dir, spec, tmp_path / "a", every=0)
    run(tiny_dir, spec, tmp_path / "b", steps=6, every=2)
    kept = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert kept == ["step000004"], "only the newest checkpoint is kept, none after the last step"
    resumed, weights = run(tiny_dir, spec, tmp_path / "b")  # the outputs were never written: go again
    assert resumed["resumed_from_step"] == 4 and reference["resumed_from_step"] is None
    assert resumed["loss_curve"] == reference["loss_curve"]
    assert resumed["val_loss_after"] == reference["val_loss_after"]
    assert all(torch.equal(weights[n], ref_weights[n]) for n in ref_weights)


def test_checkpoint_of_other_settings_is_not_resumed(tiny_dir, method_specs, tmp_path):
    run(tiny_dir, method_specs["lora"], tmp_path, every=2, fingerprint="old")
    stats, _ = run(tiny_dir, method_specs["lora"], tmp_path, every=0, fingerprint="new")
    assert stats["resumed_from_step"] is None and not tmp_path.exists()


def test_checkpoint_is_json_and_safetensors_only(tiny_dir, method_specs, tmp_path):
    run(tiny_dir, method_specs["lora"], tmp_path, every=2)
    (step,) = tmp_path.iterdir()
    assert sorted(p.name for p in step.iterdir()) == ["optimizer.safetensors", "state.json", "trainable.safetensors"]
    meta = json.loads((step / "state.json").read_text())
    assert meta["step"] == 4 and len(meta["progress"]["loss_curve"]) == 4


def test_torn_checkpoint_folder_is_ignored(tiny_dir, method_specs, tmp_path):
    """A kill during a save leaves only a .tmp- folder: never taken as a checkpoint."""
    (tmp_path / ".tmp-abc").mkdir(parents=True)
    (tmp_path / ".tmp-abc" / "state.json").write_text("{")
    stats, _ = run(tiny_dir, method_specs["lora"], tmp_path, every=0)
    assert stats["resumed_from_step"] is None


def test_the_grad_scalers_state_round_trips_through_a_checkpoint(tmp_path):
    """fp16 trains with dynamic loss scaling (Micikevicius et al. 2018, Sec. 3.2; the LoRA repo's --fp16): an
    overflowing step is skipped and the scale halved, and it doubles after growth_interval good steps. A resumed
    run must go on from the scale and growth counter where it stopped, not from the initial ones."""
    layer = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(layer.parameters())
    sched = train.schedule(opt, 10, 0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3)
    scaler.load_state_dict({**scaler.state_dict(), "scale": 2.0**7, "_growth_tracker": 2})  # as after some steps
    checkpoint.Checkpoints(tmp_path, 1, "f").save(1, layer, opt, sched, {"loss_curve": []}, scaler)
    fresh = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3)
    checkpoint.Checkpoints(tmp_path, 1, "f").restore(layer, opt, sched, fresh)
    assert fresh.state_dict() == scaler.state_dict()


def test_fp16_run_resumes_with_its_loss_scale(tiny_dir, method_specs, tmp_path, monkeypatch):
    """An fp16 run (scale from 2^24, which backs off in the first steps) resumed from a checkpoint ends bit for bit
    where an uninterrupted one does. (Checked: it also passes without the scaler's state, since 2^24 no longer
    overflows after the checkpoint; the round trip above is the test that needs the state.)"""
    monkeypatch.setattr(torch.amp, "GradScaler", functools.partial(torch.amp.GradScaler, init_scale=2.0**24))

    def fp16_run(folder, every):
        model, tok, *_ = method_model(tiny_dir, method_specs["lora"])
        ckpt = checkpoint.Checkpoints(folder, every, "f")
        stats = train.train(model, tok, RECORDS, RECORDS[:4], settings(steps=6), 0, "fp16", checkpoints=ckpt)
        return stats, {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    reference, ref_weights = fp16_run(tmp_path / "a", every=0)
    fp16_run(tmp_path / "b", every=4)
    saved = json.loads((tmp_path / "b" / "step000004" / "state.json").read_text())["grad_scaler"]
    assert saved["scale"] < 2.0**24, "the scale never backed off: this test would not see a lost scaler state"
    resumed, weights = fp16_run(tmp_path / "b", every=4)
    assert resumed["resumed_from_step"] == 4
    assert resumed["loss_curve"] == reference["loss_curve"]
    assert all(torch.equal(weights[n], ref_weights[n]) for n in ref_weights)


# ---- one process trains a run (issue 27, WEAK: `snakemake --unlock` while a run is live) ------------------------
def test_a_run_being_trained_is_not_trained_again_beside_it(tiny_dir, method_specs, tmp_path):
    """A second Snakemake in the same folder (after --unlock) trained the same run into the same checkpoint folder.
    The lock is the kernel's: a holder killed with -9 releases it, and a finished run leaves no lock file."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from peftbench.stages import pipeline

    run_dir = tmp_path / "qa/lora/seed0"
    hold = "from peftbench.stages import checkpoint; import sys, time\n"
    hold += f"with checkpoint.sole_trainer({str(run_dir)!r}):\n    print('held', flush=True); time.sleep(60)\n"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        began = time.perf_counter()
        with pytest.raises(RuntimeError, match=rf"pid {holder.pid} is training this run now .*--unlock"):
            pipeline.finetune({}, tiny_dir, "qa", method_specs["lora"], 0, tmp_path, run_dir / "s", run_dir / "t")
        assert time.perf_counter() - began < 1  # at once, before the model loads
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with checkpoint.sole_trainer(run_dir):  # released with its holder
        pass
    assert sorted(p.name for p in run_dir.iterdir()) == []
