"""The warm worker (peftbench/warm_worker.py): a job forked from it is the job a fresh process would run, with
the job's stdio, directory, argv, environment and exit status, and the same training results; a job it cannot
serve runs in its own process and says why; stopping a job's process stops its forked job."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from peftbench import warm_worker
from peftbench.paths import ROOT

SCRIPT = """
from peftbench import warm_worker
warm_worker.delegate()
import json, os, sys, torch
print(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(), "argv": sys.argv[1:],
                  "x": os.environ.get("X"), "threads": torch.get_num_threads()}))
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]) if sys.argv[1:] and sys.argv[1].isdigit() else 0)
"""


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    """A worker owned by this test process, with the environment the jobs below start from."""
    d = tmp_path_factory.mktemp("worker")
    sock = d / "w.sock"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "X": "1"}
    env.pop(warm_worker.ENV, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "peftbench.warm_worker", str(sock), str(os.getpid())],
        env=env,
        stdout=open(d / "w.log", "w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield proc, sock, env, d
    proc.terminate()
    proc.wait(30)
    assert not sock.exists()  # it removes its socket when it ends


def run(script_dir, env, *args, **kw):
    script = script_dir / "job.py"
    script.write_text(textwrap.dedent(SCRIPT))
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=script_dir, env=env, capture_output=True, text=True, **kw
    )


def test_a_job_runs_forked_from_the_worker_with_its_stdio_directory_argv_environment_and_status(worker, tmp_path):
    proc, sock, env, _ = worker
    res = run(tmp_path, {**env, warm_worker.ENV: str(sock), "OMP_NUM_THREADS": "1"}, "a", "b c")
    out = json.loads(res.stdout)
    assert out["ppid"] == proc.pid  # forked by the worker, not run by the job's own interpreter
    assert (out["cwd"], out["argv"], out["x"], out["threads"]) == (str(tmp_path), ["a", "b c"], "1", 1)
    assert res.stderr == "to stderr\n" and res.returncode == 0


def test_the_jobs_exit_status_is_its_processs_and_the_log_has_its_cpu_and_memory(worker, tmp_path):
    proc, sock, env, d = worker
    res = run(tmp_path, {**env, warm_worker.ENV: str(sock)}, "3")
    pid = json.loads(res.stdout)["pid"]
    assert json.loads(res.stdout)["ppid"] == proc.pid and res.returncode == 3
    # logged when the worker reaped the job, before it answered the job's process
    line = next(x for x in (d / "w.log").read_text().splitlines() if f"pid {pid}: job.py exited" in x)
    assert re.search(r"exited 3 after [\d.]+ s, [\d.]+ s CPU, [1-9]\d* MB$", line), line


def test_the_thread_count_follows_the_jobs_omp_num_threads(worker, tmp_path):
    _, sock, env, _ = worker
    res = run(tmp_path, {**env, warm_worker.ENV: str(sock), "OMP_NUM_THREADS": "2"})
    assert json.loads(res.stdout)["threads"] == 2 and res.returncode == 0


def test_a_job_with_another_environment_runs_in_its_own_process_and_says_why(worker, tmp_path):
    proc, sock, env, _ = worker
    res = run(tmp_path, {**env, warm_worker.ENV: str(sock), "X": "2"})
    out = json.loads(res.stdout)
    assert out["ppid"] != proc.pid and out["x"] == "2" and res.returncode == 0
    assert "environment differs from the worker's in X; this job runs in its own process" in res.stderr


def test_without_a_worker_the_job_runs_in_its_own_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), warm_worker.ENV: str(tmp_path / "none.sock")}
    res = run(tmp_path, env, "z")
    assert json.loads(res.stdout)["argv"] == ["z"] and res.stderr == "to stderr\n" and res.returncode == 0


def test_stopping_a_jobs_process_stops_its_forked_job(worker, tmp_path):
    _, sock, env, _ = worker
    script = tmp_path / "sleep.py"
    pid_file = tmp_path / "pid"
    script.write_text(
        "from peftbench import warm_worker\nwarm_worker.delegate()\nimport os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    )
    client = subprocess.Popen([sys.executable, str(script)], env={**env, warm_worker.ENV: str(sock)})
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    job = int(pid_file.read_text())
    client.send_signal(signal.SIGKILL)  # as Snakemake stops a job
    client.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{job}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{job}").exists()


TRAIN = """
from peftbench import warm_worker
warm_worker.delegate()
import json, os, sys
sys.path.insert(0, {tests!r})
from test_train import RECORDS, settings
from peftbench import config, methods
from peftbench.stages import pipeline, train
from peftbench.model import assemble
spec = config.discover_methods()["lora"]
model, tok, module, _ = assemble.method_model({base!r}, spec, seed=0)
stats = train.train(model, tok, RECORDS, RECORDS[:4], settings(steps=3), seed=0)
state = module.task_state(model)
print(json.dumps({{"ppid": os.getppid(), "loss": stats["loss_curve"], "val": stats["val_loss_after"],
                  "state": {{k: v.double().sum().item() for k, v in state.items()}}}}))
"""


def test_training_in_the_worker_gives_what_a_fresh_process_gives(worker, tiny_dir, tmp_path):
    """Bit for bit on this CPU: the loss curve, the validation loss and every trained tensor."""
    proc, sock, env, _ = worker
    script = tmp_path / "train_job.py"
    script.write_text(TRAIN.format(tests=str(Path(__file__).parent), base=str(tiny_dir)))
    out = {}
    for where, job_env in {"worker": {**env, warm_worker.ENV: str(sock)}, "fresh": env}.items():
        res = subprocess.run(
            [sys.executable, str(script)], env={**job_env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr[-3000:]
        out[where] = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["worker"].pop("ppid") == proc.pid and out["fresh"].pop("ppid") != proc.pid
    assert out["worker"] == out["fresh"] and len(out["worker"]["loss"]) == 3


OTHER_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(
    not Path(OTHER_PYTHON).exists() or os.path.realpath(OTHER_PYTHON) == os.path.realpath(sys.executable),
    reason="needs a second Python interpreter",
)
def test_a_job_of_another_python_runs_in_its_own_process(worker, tmp_path):
    """As a rule with its own conda: environment would: the worker's interpreter and packages are not the job's."""
    proc, sock, env, _ = worker
    script = tmp_path / "other.py"
    script.write_text("from peftbench import warm_worker\nwarm_worker.delegate()\nimport os\nprint(os.getppid())\n")
    job_env = {**env, warm_worker.ENV: str(sock)}
    res = subprocess.run([OTHER_PYTHON, str(script)], env=job_env, capture_output=True, text=True)
    assert res.returncode == 0 and int(res.stdout) != proc.pid
    assert "differs from the worker's in the Python interpreter" in res.stderr


# ---- a job dies with its worker and its client; no output of a failed job appears (issue 27, case 1) ----------

SLOW_JOB = """
from peftbench import warm_worker
warm_worker.delegate()
import os, subprocess, sys, time
from pathlib import Path
from peftbench import io
here = Path(sys.argv[1])
child = subprocess.Popen(["sleep", "120"])  # what a job starts (a tokenizer pool, java): it goes with the job
io.write_text(here / "pids", f"{{os.getpid()}} {{child.pid}} {{os.getppid()}}")
while not (here / "go").exists() and time.monotonic() < {deadline}:
    time.sleep(0.02)
io.write_json(here / "{output}", {{"written_by": os.getpid()}})  # the job's declared output
"""


@pytest.fixture
def own_worker(tmp_path):
    """A worker this test may kill."""
    sock = tmp_path / "own.sock"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(warm_worker.ENV, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "peftbench.warm_worker", str(sock), str(os.getpid())],
        env=env,
        stdout=open(tmp_path / "own.log", "w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield proc, sock, env
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)


def _start_slow_job(tmp_path, env, sock, output="train.json"):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_JOB.format(deadline=time.monotonic() + 60, output=output))
    client = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        env={**env, warm_worker.ENV: str(sock)},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "pids").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    job, grandchild, parent = map(int, (tmp_path / "pids").read_text().split())
    return client, job, grandchild, parent


def _runs(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_killing_the_worker_kills_its_jobs_and_no_output_appears_afterwards(own_worker, tmp_path):
    """kill -9 of the worker: the job (and what it started) is gone before its process reports the failure to
    Snakemake, and the job's output never appears, so no rerun collides with it and no later run adopts it."""
    proc, sock, env = own_worker
    client, job, grandchild, parent = _start_slow_job(tmp_path, env, sock)
    assert parent == proc.pid and _runs(job) and _runs(grandchild)
    proc.kill()  # kill -9 the worker
    began = time.monotonic()
    _, err = client.communicate(timeout=30)
    failed_after = time.monotonic() - began
    assert client.returncode == 1 and "the worker ended while running this job" in err, err
    assert not _runs(job) and not _runs(grandchild)  # gone by the time Snakemake hears of the failure
    assert failed_after < 2, failed_after
    (tmp_path / "go").touch()  # an orphan would now write its output
    time.sleep(1.5)
    assert not (tmp_path / "train.json").exists()
    assert not list(tmp_path.glob(".train.json.*"))


def test_a_job_whose_process_ended_writes_no_output(own_worker, tmp_path):
    """Even where the worker could not stop the job in time (here: the worker is paused), a job whose own
    process (the one Snakemake watches) has ended refuses to rename its outputs into place."""
    proc, sock, env = own_worker
    client, job, grandchild, _ = _start_slow_job(tmp_path, env, sock)
    proc.send_signal(signal.SIGSTOP)  # the worker cannot react to its client's end
    try:
        client.kill()  # as Snakemake stops or fails a job
        client.wait(10)
        (tmp_path / "go").touch()
        deadline = time.monotonic() + 30
        while _runs(job) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _runs(job)  # it ended on its own: JobStopped at the rename
        assert not (tmp_path / "train.json").exists() and not list(tmp_path.glob(".train.json.*"))
    finally:
        proc.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 10
    while _runs(grandchild) and time.monotonic() < deadline:  # the worker then stops the rest of its group
        time.sleep(0.05)
    assert not _runs(grandchild)


# ---- a job that ends oddly says how (issue 27, WEAK): a crash in native code, an exit before the outputs --------
ODD_END = """
import types
snakemake = types.SimpleNamespace(output=["out.txt"], log=["job.log"])  # what Snakemake's preamble defines
from peftbench import warm_worker
warm_worker.delegate()
import ctypes, os, sys
from peftbench.stages import pipeline
with pipeline.logged(snakemake):
    if sys.argv[1] == "segfault":
        ctypes.string_at(0)  # a crash in native code
    os._exit(0)  # a library that ends the process early, before the outputs
"""


@pytest.mark.parametrize(
    "how, status, said",
    [
        ("segfault", 128 + signal.SIGSEGV, "the job was killed by SIGSEGV"),
        ("exit0", 1, "the job ended with status 0 without writing out.txt: something in it ended the process"),
    ],
)
def test_a_job_that_crashes_or_exits_early_says_so(worker, tmp_path, how, status, said):
    """A segfault read "still running, or killed" in the report; an os._exit(0) was Snakemake's
    MissingOutputException blaming filesystem latency."""
    from peftbench.report import aggregate

    _, sock, env, _ = worker
    (tmp_path / "job.py").write_text(textwrap.dedent(ODD_END))
    res = subprocess.run(
        [sys.executable, "job.py", how],
        cwd=tmp_path,
        env={**env, warm_worker.ENV: str(sock)},
        capture_output=True,
        text=True,
    )
    assert res.returncode == status and said in res.stderr, res.stderr
    if how == "segfault":  # faulthandler's report in the job's log, where the report reads why a run is missing
        (tmp_path / "finetune.log").write_text((tmp_path / "job.log").read_text())
        assert aggregate.why_missing(tmp_path).startswith("finetune crashed: Segmentation fault (see ")
