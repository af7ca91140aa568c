"""The shared training loop (peftbench.stages.train.train) vs a bare torch loop on the same model and batches
(benchmarks/train_loop.py); the issue's target is a harness overhead under 5%."""

import copy
import os

import pytest
import train_loop
from conftest import CLOCK, ROUNDS

SIZE = os.environ.get("PEFTBENCH_BENCH_TRAIN_SIZE", "tiny")
STEPS = 4


@pytest.fixture(scope="module", params=["full", "lora"])
def loop(request):
    model, tok, settings = train_loop.setup(SIZE, request.param)
    settings = {**settings, "steps": STEPS, "batch_size": 4}
    recs = train_loop.records()[: STEPS * 4]
    return request.param, model, tok, settings, recs, train_loop.the_batches(tok, recs, settings)


def fresh(model):
    return lambda: ((copy.deepcopy(model),), {})


@pytest.mark.parametrize("loop_kind", ["harness", "bare", "bare-target-loss", "bare-recipe"])
def test_train_steps(benchmark, loop, loop_kind):
    method, model, tok, settings, recs, batches = loop
    benchmark.group = f"train {SIZE} {method} ({STEPS} steps)"
    run = {
        "harness": lambda m: train_loop.harness(m, tok, recs, settings),
        "bare": lambda m: train_loop.bare(m, batches, settings),
        "bare-target-loss": lambda m: train_loop.bare(m, batches, settings, train_loop.train.target_loss),
        "bare-recipe": lambda m: train_loop.bare(m, batches, settings, train_loop.train.target_loss, recipe=True),
    }[loop_kind]
    benchmark.pedantic(run, setup=fresh(model), rounds=max(2, ROUNDS // 2), warmup_rounds=1)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_harness_overhead_is_under_5_percent(method):
    r = train_loop.compare(SIZE, method, STEPS, 4, rounds=max(3, ROUNDS // 2), clock=CLOCK)
    print(f"\n{r}")
    assert r["ratio_vs_bare_recipe"] < 1.05, r
