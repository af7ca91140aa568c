"""Resumable training: every N steps the loop writes what it needs to continue bit for bit.

    {run}/checkpoints/step000008/
        trainable.safetensors   the trainable parameters (for full FT: all of them)
        optimizer.safetensors   AdamW's per-parameter tensors + the torch RNG state (dropout)
        state.json              step, loss curve so far, counters, optimizer param groups, scheduler
                                state, and the fingerprint of the run's settings

Each checkpoint is written into a temporary folder and renamed into place (atomic on POSIX), so a
SIGKILL at any moment leaves either the previous checkpoint or the new one, never a torn one. The
data position needs no state: the batch plan is a pure function of (seed, steps, dataset size), so
resuming at step k takes the plan's batches from k on. Only safetensors and JSON: no pickle.
A checkpoint whose fingerprint differs from the run's (the settings changed) is never resumed.
"""
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from . import io

PREFIX = "step"


class Checkpoints:
    def __init__(self, folder, every, fingerprint):
        self.folder, self.every, self.fingerprint = Path(folder), int(every or 0), fingerprint

    def due(self, step, steps):
        """After `step` completed steps; the final step needs none (the outputs follow at once)."""
        return self.every > 0 and step % self.every == 0 and step < steps

    def _complete(self):
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX))

    def save(self, step, model, opt, sched, progress):
        params = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
        opt_tensors, opt_meta = {"rng.torch": torch.get_rng_state()}, {}
        for p, state in opt.state.items():
            for key, value in state.items():
                opt_tensors[f"{names[id(p)]}::{key}"] = value.detach().contiguous()
        groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        meta = {"fingerprint": self.fingerprint, "step": step, "progress": progress,
                "param_groups": groups, "scheduler": _jsonable(sched.state_dict())}
        with io.atomic_dir(self.folder / f"{PREFIX}{step:06d}") as tmp:
            save_file(params, str(tmp / "trainable.safetensors"))
            save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
            (tmp / "state.json").write_text(json.dumps(meta))
        for old in self._complete()[:-1]:                 # keep the newest only
            shutil.rmtree(old, ignore_errors=True)

    def restore(self, model, opt, sched):
        """Load the newest checkpoint into model/opt/sched; returns (step, progress) or None."""
        found = self._complete()
        if not found:
            return None
        path = found[-1]
        meta = json.loads((path / "state.json").read_text())
        if meta["fingerprint"] != self.fingerprint:
            print(f"checkpoint {path}: settings changed since it was written; starting from step 0")
            self.clear()
            return None
        params = load_file(str(path / "trainable.safetensors"))
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        if set(params) != set(trainable):
            raise ValueError(f"{path}/trainable.safetensors: tensors do not match the model's trainable parameters")
        with torch.no_grad():
            for n, p in trainable.items():
                p.copy_(params[n])
        tensors = load_file(str(path / "optimizer.safetensors"))
        for n, p in trainable.items():
            state = {k.split("::", 1)[1]: v for k, v in tensors.items() if k.startswith(n + "::")}
            if state:
                opt.state[p] = state
        for group, saved in zip(opt.param_groups, meta["param_groups"]):
            group.update(saved)
        sched.load_state_dict(meta["scheduler"])
        torch.set_rng_state(tensors["rng.torch"])
        print(f"resumed from {path} (step {meta['step']})")
        return meta["step"], meta["progress"]

    def clear(self):
        shutil.rmtree(self.folder, ignore_errors=True)


def _jsonable(obj):
    """Scheduler state without the lambdas (rebuilt by the loop; LambdaLR stores None for them)."""
    return json.loads(json.dumps(obj, default=lambda _: None))
