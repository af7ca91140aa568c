"""A finished run outside peftbench: peft's PeftModel loads the adapter folder of every peft-backed method,
`peftbench.load_run` gives a ready transformers model for every method, both matching peftbench's own load;
lm-eval's own command line (the README's command, from the repository root) scores a run as the DAG does."""

import json
import shlex
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from peft import PeftModel
from transformers import AutoModelForCausalLM

import peftbench
from peftbench import config, io
from peftbench.model import finished_run
from peftbench.paths import ROOT
from peftbench.stages import evaluate, pipeline
from tests.conftest import tiny_runs

PEFT_METHODS = ["lora", "ia3", "prefix", "prompt-tuning"]
NATIVE_METHODS = ["houlsby", "shared-layers"]


@pytest.fixture(scope="module")
def results(tmp_path_factory, tiny_dir):
    """results/tiny/{base_model, data/qa, qa/<method>/seed0} as the DAG lays them out (conftest.tiny_runs)."""
    root = tmp_path_factory.mktemp("results")
    return root, tiny_runs(root, tiny_dir, {m: [0] for m in PEFT_METHODS + NATIVE_METHODS})


def logits(model, tok):
    ids = tok(["Read the passage and fill in the blank.\nPassage: Paris is in France.\nAnswer:"], return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits[0, -1]


@pytest.mark.parametrize("method", PEFT_METHODS)
def test_peft_loads_the_adapter_folder_as_peftbench_does(results, method):
    root, _ = results
    run = root / f"tiny/qa/{method}/seed0"
    assert {p.name for p in (run / "adapter").iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    ours, tok = peftbench.load_run(run)
    base = AutoModelForCausalLM.from_pretrained(root / "tiny/base_model", dtype=torch.float32)
    reference = logits(base, tok)
    theirs = PeftModel.from_pretrained(base, run / "adapter").eval()
    assert torch.allclose(logits(theirs, tok), logits(ours, tok), atol=1e-5)  # LoRA / (IA)^3: merged vs not
    assert not torch.allclose(logits(ours, tok), reference, atol=1e-4)  # and the adapter does something


@pytest.mark.parametrize("method", PEFT_METHODS + NATIVE_METHODS)
def test_storage_is_what_a_user_ships(results, method):
    run = results[0] / f"tiny/qa/{method}/seed0"
    train = io.read_json(run / "train.json")
    shipped = (
        ["adapter/adapter_config.json", "adapter/adapter_model.safetensors"]
        if method in PEFT_METHODS
        else ["task_state.safetensors"]
    )
    assert train["shipped_files"] == shipped
    assert train["shipped_bytes"] == sum((run / f).stat().st_size for f in shipped)
    assert (run / "adapter").exists() == (method in PEFT_METHODS)


@pytest.mark.parametrize("method", NATIVE_METHODS)
def test_load_run_gives_a_transformers_model_for_native_methods(results, method):
    root, _ = results
    run = root / f"tiny/qa/{method}/seed0"
    model, tok = peftbench.load_run(run)
    base = AutoModelForCausalLM.from_pretrained(root / "tiny/base_model", dtype=torch.float32)
    assert not torch.allclose(logits(model, tok), logits(base, tok), atol=1e-4)
    out = model.generate(**tok(["Answer:"], return_tensors="pt"), max_new_tokens=3, do_sample=False)
    assert out.shape[1] > 2 and not model.training


def test_a_variant_runs_its_parent_folder(results, tmp_path):
    """A profile's variant (Adapter-L = houlsby, placement mlp_only) is found through train.json's method_folder."""
    run = results[0] / "tiny/qa/houlsby/seed0"
    assert finished_run.method_spec(run)["dir"].endswith("methods/houlsby")
    copy = tmp_path / "tiny/qa/adapter-l/seed0"
    shutil.copytree(run, copy)
    train = io.read_json(copy / "train.json")
    io.write_json(copy / "train.json", {**train, "method": "adapter-l"})
    assert finished_run.method_spec(copy)["dir"].endswith("methods/houlsby")
    io.write_json(copy / "train.json", {**train, "method_folder": "no-such-method"})
    with pytest.raises(FileNotFoundError, match="train.json: field 'method_folder'"):
        finished_run.method_spec(copy)


def test_not_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.json: missing"):
        peftbench.load_run(tmp_path)


def dag_score(root, cfg, method):
    """The DAG's evaluate job on one run (lm-eval on the in-memory model): its lm_eval.json."""
    run, spec = root / f"tiny/qa/{method}/seed0", config.discover_methods()[method]
    pipeline.evaluate_job(
        cfg,
        str(root / "tiny/base_model"),
        "qa",
        spec,
        run / "task_state.safetensors",
        root / "data/qa/test.jsonl",
        run / "lm_eval.json",
        run / "samples.jsonl",
        run / "latency.json",
    )
    return io.read_json(run / "lm_eval.json")


def lm_eval_cli(out, *args):
    """lm-eval's CLI (`python -m ...` as `sys.executable`) run from the repository root, as the README says: the
    run's lm_eval_task.yaml names its data by absolute path, so no `cd` into the data folder."""
    cmd = [sys.executable, *args, "--output_path", str(out), "--log_samples"]  # + where to write, and the answers
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    (written,) = out.rglob("results_*.json")
    return json.loads(written.read_text())


def readme_lm_eval_command(run):
    """The README's lm-eval command for a run of this project's tasks, as written (continuation lines joined), its
    smoke run folder replaced by `run`."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    (line,) = [s.strip() for s in text.splitlines() if "lm_eval_task.yaml --batch_size" in s]
    return [a.replace("results/smoke/tiny-random-llama/qa/lora/seed0", str(run)) for a in shlex.split(line)]


@pytest.mark.parametrize("method", ["lora", "houlsby"])
def test_the_readmes_lm_eval_command_scores_a_run_as_the_dag_does(results, method, tmp_path):
    """lm_eval.json records how the DAG ran lm-eval (batch size, device, the command); the README's command, run as
    written from the repository root, gives the DAG's scores."""
    root, cfg = results
    cfg = {**cfg, "device": "cpu"}  # the README's command says --device cpu
    run = root / f"tiny/qa/{method}/seed0"
    dag = dag_score(root, cfg, method)
    assert dag["config"]["model"] == "peftbench" and dag["config"]["model_args"] == f"run={run}"
    assert dag["config"]["peftbench_method"] == method
    assert (dag["config"]["batch_size"], dag["config"]["device"]) == (cfg["evaluation"]["batch_size"], "cpu")
    task = yaml.safe_load((run / "lm_eval_task.yaml").read_text())
    assert task["dataset_kwargs"]["data_files"] == {"test": str((root / "data/qa/test.jsonl").resolve())}
    assert task["include"] == str((ROOT / "tasks/qa/lm_eval.yaml").resolve())
    assert task["generation_kwargs"]["until"] == ["\n"]
    assert task["generation_kwargs"]["begin_suppress_tokens"]  # the answer-start protocol reaches the CLI too

    readme = readme_lm_eval_command(run)
    assert shlex.split(dag["peftbench"]["lm_eval_command"]) == readme  # the README's command is the recorded one
    assert readme[readme.index("--batch_size") + 1] == str(cfg["evaluation"]["batch_size"])  # the smoke profile's
    assert readme[0] == "python"
    cli = lm_eval_cli(tmp_path, *readme[1:])
    assert cli["config"]["peftbench_run"] == str(run) and cli["config"]["peftbench_method"] == method
    for metric in ("exact_match,none", "f1,none"):
        assert cli["results"]["peftbench_qa"][metric] == dag["results"]["peftbench_qa"][metric]
    # a random tiny model scores 0 either way: its answers, word for word, are the comparison that can fail
    answers = {r["doc_id"]: r["filtered_resps"] for r in io.read_jsonl(run / "samples.jsonl")}
    (logged,) = tmp_path.rglob("samples_peftbench_qa_*.jsonl")
    assert {r["doc_id"]: r["filtered_resps"] for r in io.read_jsonl(logged)} == answers
    assert any(a != [""] for a in answers.values())
    if method == "lora":  # peft's own path, no peftbench model: lm-eval's hf model with the adapter folder
        hf = lm_eval_cli(
            tmp_path / "hf",
            "-m",
            "lm_eval",
            "--model",
            "hf",
            "--model_args",
            f"pretrained={root / 'tiny/base_model'},peft={run / 'adapter'},dtype=float32",
            *readme[readme.index("--tasks") :],
        )
        assert hf["results"]["peftbench_qa"]["f1,none"] == dag["results"]["peftbench_qa"]["f1,none"]
        (logged,) = (tmp_path / "hf").rglob("samples_peftbench_qa_*.jsonl")
        assert {r["doc_id"]: r["filtered_resps"] for r in io.read_jsonl(logged)} == answers


def test_the_recorded_command_reproduces_a_few_shot_chat_run(results, tmp_path):
    """A seeded few-shot run in the chat template (seed 3: the demonstrations are drawn with it): the command its
    lm_eval.json records (--seed 0,0,0,3, --apply_chat_template, the train split by absolute path) gives its
    prompts and answers."""
    root, cfg = results
    cfg = {**cfg, "device": "cpu"}
    spec, run, data = config.discover_methods()["few-shot"], root / "tiny/qa/few-shot/seed3", root / "data/qa"
    base = str(root / "tiny/base_model")
    pipeline.finetune(cfg, base, "qa", spec, 3, data, run / "task_state.safetensors", run / "train.json")
    outs = [run / f for f in ("lm_eval.json", "samples.jsonl", "latency.json")]
    pipeline.evaluate_job(
        cfg,
        base,
        "qa",
        spec,
        run / "task_state.safetensors",
        data / "test.jsonl",
        *outs,
        train_file=data / "train.jsonl",
        seed=3,
    )
    command = shlex.split(io.read_json(run / "lm_eval.json")["peftbench"]["lm_eval_command"])
    assert command[command.index("--seed") + 1] == "0,0,0,3" and "--apply_chat_template" in command
    lm_eval_cli(tmp_path, *command[1:])
    (logged,) = tmp_path.rglob("samples_peftbench_qa_*.jsonl")
    cli = {r["doc_id"]: (evaluate.prompt_of(r), r["filtered_resps"]) for r in io.read_jsonl(logged)}
    dag = {r["doc_id"]: (r["prompt"], r["filtered_resps"]) for r in io.read_jsonl(run / "samples.jsonl")}
    assert cli == dag
    assert all(p.count("<|im_start|>user") == 4 for p, _ in dag.values())  # 3 demonstrations as turns, then the test


@pytest.mark.parametrize("method", ["prefix", "houlsby"])
def test_generate_gives_the_answers_the_dag_scored(results, method):
    """Issue 29, item 4: `python -m peftbench.model.generate <run>` with the task's fields as JSON lines on stdin
    fills the task's prompt template, stops at its stop sequence with the evaluation's answer-start suppression,
    and answers each test record as the DAG's evaluation did (its samples.jsonl), word for word; a prompt given
    whole is completed the same way; the prefix run's answers are not the base model's (the KV prefix reaches
    generation)."""
    from peftbench.model.generate import Task, complete

    root, cfg = results
    run = root / f"tiny/qa/{method}/seed0"
    dag_score(root, cfg, method)
    records = io.read_jsonl(root / "data/qa/test.jsonl")
    res = subprocess.run(
        [sys.executable, "-m", "peftbench.model.generate", str(run)],
        input="".join(json.dumps({f: r[f] for f in ("id", "context", "question")}) + "\n" for r in records),
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    ours = [json.loads(line)["completion"] for line in res.stdout.splitlines()]
    dag = {r["doc_id"]: r["filtered_resps"][0] for r in io.read_jsonl(run / "samples.jsonl")}
    assert ours == [dag[i] for i in range(len(records))]
    model, tok = peftbench.load_run(run)
    task = Task(run, tok)
    assert (task.until, task.max_new_tokens, task.chat) == (["\n"], 16, False)  # qa's lm_eval.yaml; no chat here
    whole = subprocess.run(
        [sys.executable, "-m", "peftbench.model.generate", str(run), records[0]["prompt"].replace("\n", "\\n")],
        capture_output=True,
        text=True,
    )
    assert whole.stdout == ours[0] + "\n"
    base = AutoModelForCausalLM.from_pretrained(root / "tiny/base_model", dtype=torch.float32)
    settings = {"until": task.until, "suppress": task.suppress}
    assert [complete(base, tok, r["prompt"], 16, **settings) for r in records] != ours
