"""An offline profile sets the Hugging Face offline switches itself; a hub profile does not."""

import pytest

from peftbench import config, offline

C = config.CONFIG


def profile(*names):
    cfg = config.load_profile(*(C / n for n in names))
    return cfg, {t: config.load_task(t) for t in config.selected_tasks(cfg)}


@pytest.mark.parametrize("names", [("config.yaml",), ("config.yaml", "smoke.yaml")])
def test_registry_profiles_are_offline(names):
    env = {}
    assert offline.apply(*profile(*names), environ=env) == offline.ENV == env


@pytest.mark.parametrize("names", [("config.yaml", "paper-lora-e2e.yaml"), ("config.yaml", "paper-seed.yaml")])
def test_hub_profiles_stay_online(names):
    env = {}
    assert offline.apply(*profile(*names), environ=env) == {} and env == {}


def test_a_hub_model_or_a_hub_dataset_needs_the_hub(tmp_path):
    cfg, tasks = profile("config.yaml", "smoke.yaml")
    assert not offline.is_offline({**cfg, "model": {"name": "m", "source": "HuggingFaceTB/SmolLM2-135M"}}, tasks)
    hub = {"type": "hf", "path": "rajpurkar/squad"}
    assert not offline.is_offline(
        {**cfg, "tasks": {**cfg["tasks"], "qa": {**cfg["tasks"]["qa"], "source": hub}}}, tasks
    )
    local = {**hub, "path": str(tmp_path)}  # a local copy of the hub dataset is local
    assert offline.is_offline({**cfg, "tasks": {**cfg["tasks"], "qa": {**cfg["tasks"]["qa"], "source": local}}}, tasks)
    assert offline.is_offline({**cfg, "model": {"name": "m", "source": str(tmp_path)}}, tasks)
    # a split that reads its own dataset (metamath-gsm8k's train) must be local too
    train = {"split": "train", "path": "meta-math/MetaMathQA"}
    mixed = {**local, "splits": {"train": train, "test": "test"}}
    with_source = lambda s: {**cfg, "tasks": {**cfg["tasks"], "qa": {**cfg["tasks"]["qa"], "source": s}}}  # noqa: E731
    assert not offline.is_offline(with_source(mixed), tasks)
    assert offline.is_offline(with_source({**mixed, "splits": {"train": {**train, "path": str(tmp_path)}}}), tasks)


@pytest.mark.parametrize("names", [("config.yaml", "paper-peft-metamathqa.yaml")])
def test_peft_metamathqa_profile_stays_online(names):
    env = {}
    assert offline.apply(*profile(*names), environ=env) == {} and env == {}


def test_what_the_user_exported_wins():
    env = {"HF_HUB_OFFLINE": "0"}
    assert offline.apply(*profile("config.yaml", "smoke.yaml"), environ=env) == {
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    assert env["HF_HUB_OFFLINE"] == "0"
