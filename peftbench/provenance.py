"""What produced a result: package versions, git commit (+ dirty flag), config hash, hardware."""
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata

from . import ROOT

PACKAGES = ["torch", "transformers", "peft", "lm_eval", "datasets", "safetensors", "sacrebleu",
            "rouge-score", "snakemake", "pandas"]


def versions():
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def git_commit():
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    head = git("rev-parse", "HEAD")
    if head.returncode:
        return {"commit": None, "dirty": None}
    dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
    return {"commit": head.stdout.strip(), "dirty": dirty}


def config_hash(*parts):
    """Stable hash of the settings that determine a result (sorted-key JSON)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def hardware():
    import torch
    info = {"machine": platform.machine(), "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    return info


def record(config_parts, seed):
    return {"versions": versions(), "git": git_commit(), "config_hash": config_hash(*config_parts),
            "seed": seed, "hardware": hardware()}
