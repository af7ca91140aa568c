"""Profiles, method.yaml and task.yaml are validated; errors name the file and the field."""

import re
import shutil

import pytest
import yaml

from peftbench import config
from peftbench.config import ConfigError


def write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(obj))
    return path


def test_shipped_profiles_validate():
    default = config.load_profile(config.CONFIG / "config.yaml")
    smoke = config.load_profile(config.CONFIG / "config.yaml", config.CONFIG / "smoke.yaml")
    assert set(default["tasks"]) == {"summarization", "translation", "qa"}
    assert default["latency"]["repeats"] >= 1 and smoke["model"]["source"] == "tiny-random"


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"model": {"name": "x"}}, "model"),
        ({"training": {"steps": "ten"}}, "training.steps"),
        ({"tasks": {"qa": {"train": 5, "validation": 1}}}, "tasks.qa"),
        ({"precision": "fp8"}, "precision"),
        ({"learning_rate": 1}, "(top level)"),
    ],
)
def test_bad_profile_names_the_field(tmp_path, patch, field):
    base = yaml.safe_load((config.CONFIG / "config.yaml").read_text())
    path = write(tmp_path / "bad.yaml", {**base, **patch})
    with pytest.raises(ConfigError, match=re.escape(f"bad.yaml: field '{field}'")):
        config.load_profile(path)


def test_unknown_method_and_task_are_named():
    with pytest.raises(ConfigError, match="field 'methods': unknown method.*lroa"):
        config.selected_methods({"methods": ["lora", "lroa"]}, {"lora": {}, "full": {}})
    with pytest.raises(ConfigError, match="unknown task 'summarisation'.*known tasks: .*qa, .*summarization"):
        config.load_task("summarisation")


def test_method_directory_checks(tmp_path):
    shutil.copytree(config.METHODS / "lora", tmp_path / "lora")
    assert set(config.discover_methods(tmp_path)) == {"lora"}
    (tmp_path / "nopy").mkdir()
    (tmp_path / "nopy" / "method.yaml").write_text(
        (config.METHODS / "lora" / "method.yaml").read_text().replace("name: lora", "name: nopy")
    )
    with pytest.raises(ConfigError, match="nopy: method.py is missing"):
        config.discover_methods(tmp_path)
    shutil.rmtree(tmp_path / "nopy")
    spec = yaml.safe_load((tmp_path / "lora" / "method.yaml").read_text())
    write(tmp_path / "lora" / "method.yaml", {**spec, "training": {"learning_rate": "fast"}})
    with pytest.raises(ConfigError, match=r"lora/method.yaml: field 'training.learning_rate'"):
        config.discover_methods(tmp_path)
    write(tmp_path / "lora" / "method.yaml", {**spec, "name": "other"})
    with pytest.raises(ConfigError, match="field 'name': 'other' must equal the folder name 'lora'"):
        config.discover_methods(tmp_path)


def test_training_settings_precedence():
    cfg = {"training": {"steps": 7, "learning_rate": 1.0}, "method_training": {"lora": {"steps": 3}}}
    spec = {"name": "lora", "training": {"learning_rate": 0.5}}
    s = config.training_settings(cfg, spec)
    assert (s["steps"], s["learning_rate"], s["batch_size"]) == (3, 0.5, 8)
