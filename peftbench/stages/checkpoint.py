"""Resumable training: every N steps the loop writes what it needs to continue bit for bit.

    {run}/checkpoints/step000008/
        trainable.safetensors   the trainable parameters (for full FT: all of them)
        optimizer.safetensors   AdamW's per-parameter tensors + the torch RNG state (dropout)
        state.json              step, loss curve so far, counters, optimizer param groups, scheduler
                                state, the fp16 GradScaler's state (its loss scale and growth counter)
                                and the fingerprint of the run's settings

Each checkpoint is written into a temporary folder and renamed into place (atomic on POSIX), so a
SIGKILL at any moment leaves either the previous checkpoint or the new one, never a torn one. The
data position needs no state: the batch plan is a pure function of (seed, steps, dataset size), so
resuming at step k takes the plan's batches from k on. Only safetensors and JSON: no pickle.
A checkpoint whose fingerprint (peftbench.identity: data, code, settings) differs from the run's is
never resumed; one that cannot be read is discarded with a warning.
"""

import contextlib
import fcntl
import json
import os
import shutil
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from peftbench import io

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

    def save(self, step, model, opt, sched, progress, scaler=None):
        params = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
        opt_tensors = {"rng.torch": torch.get_rng_state()}
        for p, state in opt.state.items():
            for key, value in state.items():
                opt_tensors[f"{names[id(p)]}::{key}"] = value.detach().contiguous()
        groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        meta = {
            "fingerprint": self.fingerprint,
            "step": step,
            "progress": progress,
            "param_groups": groups,
            "scheduler": _jsonable(sched.state_dict()),
            # fp16's dynamic loss scale: a resumed run that restarted at the initial scale would skip other steps
            "grad_scaler": scaler.state_dict() if scaler is not None else {},
        }
        with io.atomic_dir(self.folder / f"{PREFIX}{step:06d}") as tmp:
            save_file(params, str(tmp / "trainable.safetensors"))
            save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
            (tmp / "state.json").write_text(json.dumps(meta))
        for old in self._complete()[:-1]:  # keep the newest only
            shutil.rmtree(old, ignore_errors=True)

    def restore(self, model, opt, sched, scaler=None):
        """Load the newest checkpoint into model/opt/sched (and the fp16 GradScaler); returns (step, progress) or None. A checkpoint of
        another run (fingerprint differs) or one that cannot be read whole is discarded with a warning and the
        run starts from step 0: a bad checkpoint must never make every rerun fail, nor be half applied."""
        found = self._complete()
        if not found:
            return None
        path = found[-1]
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        try:
            meta = json.loads((path / "state.json").read_text())
            if meta.get("fingerprint") != self.fingerprint:
                return self._discard(path, "written by another run (its data, code or settings differ)")
            params = load_file(str(path / "trainable.safetensors"))
            tensors = load_file(str(path / "optimizer.safetensors"))
            if set(params) != set(trainable):
                raise ValueError("its tensors do not match the model's trainable parameters")
            if any(params[n].shape != p.shape for n, p in trainable.items()) or "rng.torch" not in tensors:
                raise ValueError("its tensors have other shapes, or the RNG state is missing")
            step, progress = int(meta["step"]), meta["progress"]
            groups, sched_state = meta["param_groups"], meta["scheduler"]
            scaler_state = meta.get("grad_scaler") or {}
            if scaler is not None and scaler.is_enabled() and not scaler_state:
                raise ValueError("it holds no GradScaler state, which an fp16 run needs to resume")
        except (OSError, ValueError, KeyError, TypeError, safetensors_error()) as e:
            return self._discard(path, f"unreadable ({type(e).__name__}: {e})")
        with torch.no_grad():  # everything was read: now apply it
            for n, p in trainable.items():
                p.copy_(params[n])
        for n, p in trainable.items():
            state = {k.split("::", 1)[1]: v for k, v in tensors.items() if k.startswith(n + "::")}
            if state:
                opt.state[p] = state
        for group, saved in zip(opt.param_groups, groups):
            group.update(saved)
        sched.load_state_dict(sched_state)
        if scaler_state and scaler is not None:
            scaler.load_state_dict(scaler_state)
        torch.set_rng_state(tensors["rng.torch"])
        print(f"resumed from {path} (step {step})")
        return step, progress

    def _discard(self, path, why):
        warnings.warn(f"checkpoint {path}: {why}; discarded, starting from step 0", stacklevel=3)
        print(f"WARNING: checkpoint {path}: {why}; discarded, starting from step 0")
        self.clear()
        return None

    def clear(self):
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def sole_trainer(run_dir):
    """Hold the run's lock while training it. Snakemake's own lock guards a working directory, and `snakemake
    --unlock` lifts it while a run is live: a second run then trained the same run beside the first, into the same
    checkpoint folder. The kernel's flock ends with its process (kill -9 included), so a stale lock cannot block."""
    path = Path(run_dir) / ".training.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise RuntimeError(
                f"{run_dir}: pid {holder} is training this run now (a second Snakemake in this folder, after "
                f"`snakemake --unlock`?); let it finish, or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # under the lock: nothing is left in the run folder
    finally:
        os.close(fd)


def safetensors_error():
    """The error safetensors raises on a torn or junk file (a Rust exception, not an OSError)."""
    from safetensors import SafetensorError

    return SafetensorError


def _jsonable(obj):
    """Scheduler state without the lambdas (rebuilt by the loop; LambdaLR stores None for them)."""
    return json.loads(json.dumps(obj, default=lambda _: None))
