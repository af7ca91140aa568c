"""What produced a result: package versions, git commit (+ dirty flag), config hash, hardware."""

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata

from peftbench.paths import ROOT

PACKAGES = [
    "torch",
    "transformers",
    "peft",
    "lm_eval",
    "datasets",
    "safetensors",
    "sacrebleu",
    "rouge-score",
    "snakemake",
    "pandas",
]


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
    # untracked files count: a new method folder not yet committed is code the commit does not contain
    # (generated folders are git-ignored, so they do not make the tree dirty)
    dirty = bool(git("status", "--porcelain", "--untracked-files=normal").stdout.strip())
    return {"commit": head.stdout.strip(), "dirty": dirty}


def config_hash(*parts):
    """Stable hash of the settings that determine a result (sorted-key JSON)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def hardware():
    import torch

    info = {
        "machine": platform.machine(),
        "processor": _cpu_model() or platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        return None


def record(config_parts, seed, files=None):
    """`files`: {group: {path: sha256}} of the method's, task's and data files the run read
    (peftbench.identity.file_hashes), so a result names the exact code and data that made it, committed or not."""
    out = {
        "versions": versions(),
        "git": git_commit(),
        "config_hash": config_hash(*config_parts),
        "seed": seed,
        "hardware": hardware(),
    }
    if files is not None:
        out["files"] = files
    return out


def describe(records):
    """Report lines from the runs' recorded provenance (train.json's `provenance`): what produced the
    numbers, with every distinct value listed so mixed runs show up. Missing fields read as n/a."""

    def distinct(get):
        values = sorted({json.dumps(get(r), sort_keys=True, default=str) for r in records})
        return ", ".join(v.strip('"') for v in values)

    def commit(r):
        git = r.get("git") or {}
        return (git.get("commit") or "n/a")[:12] + (" (dirty tree)" if git.get("dirty") else "")

    if not records:
        return []
    return [
        f"Commit: {distinct(commit)}",
        f"Packages: {distinct(lambda r: ' '.join(f'{k} {v}' for k, v in (r.get('versions') or {}).items() if v) or 'n/a')}",
        f"Hardware: {distinct(lambda r: _hardware_line(r.get('hardware') or {}))}",
        f"Config hashes: {len({r.get('config_hash') for r in records})} distinct over {len(records)} runs; "
        f"seeds {distinct(lambda r: r.get('seed'))}",
    ]


def _hardware_line(h):
    gpu = h.get("cuda") or "no GPU"
    return f"{h.get('processor') or h.get('machine')}, {h.get('cpu_count')} CPUs, {h.get('torch_threads')} torch threads, {gpu}"
