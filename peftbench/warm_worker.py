"""A warm worker for local runs: one process imports torch, transformers, peft and lm-eval once, and every
`script:` job of the run (fine-tuning, evaluation, data, cost rules, the report) is forked from it, so a job
starts in milliseconds instead of paying the ~5 s a fresh interpreter spends importing them (issue 19: most of
a fine-tuning job's fixed cost).

    Snakefile onstart ── start() ──> worker: binds a Unix socket, imports PRELOAD, then serves
    job script, first line ── delegate() ──> worker forks ──> the same script file in the child, with the job's
        stdin/stdout/stderr (passed as file descriptors), working directory, argv and environment;
        the job's process waits and exits with the child's status
    Snakefile onsuccess/onerror ── stop()

The child is the job as a fresh process would run it: the same script, the same files, torch's thread count
from the job's OMP_NUM_THREADS (which libgomp would read at start-up), Python's and torch's random state
seeded by the job itself (methods.seed_everything). A job of another Python, or whose environment differs
from the worker's in anything but the thread counts and the temp dir (a variable a library may have read while
being imported), runs in its own process, and says so on stderr. So do jobs of a non-local executor (SLURM),
jobs on another host, and every job when the worker is gone: `delegate` only returns and the script goes on
as before. Results are the same either way (tests/test_warm_worker.py); only the start-up differs. The socket
lies in a fresh 0700 temporary folder: only this user's processes can reach it.

A job dies with its worker and with its client: the forked child asks the kernel for SIGKILL at the worker's
death (prctl PR_SET_PDEATHSIG) and runs in its own process group; the client, told the job's pid, kills that
group and waits for it to end before it reports a lost worker; the worker kills the group when the client goes.
Every output rename (peftbench.io) first checks, through a pidfd, that the job's client still runs: an output
never appears after Snakemake has failed the job (issue 27: an orphan trained on under PID 1 and its files
were adopted by the next run).

What Snakemake's `benchmark:` file sees: the waiting process. Its wall time `s` is the job's; its CPU-time and
memory columns are the waiting process's. The job's own CPU time and peak memory are in the worker's log, one
line per job (.snakemake/peftbench-worker/<snakemake pid>.log; train.json's peak_memory_bytes too).

Written by hand: multiprocessing's forkserver forks functions of its own client program, not another
program's script with that program's stdio, working directory and environment. It imports nothing heavy
itself: a job script imports this module before anything else.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import struct
import sys
import time

ENV = "PEFTBENCH_WORKER"  # the socket's path; set in the Snakemake process, so every local job inherits it
PRELOAD = (  # what a fine-tuning or evaluation job imports: ~5 s in a fresh interpreter
    "torch",
    "transformers",
    "transformers.models.llama.modeling_llama",
    "transformers.models.gpt2.modeling_gpt2",
    "peft",
    "safetensors.torch",
    "lm_eval",
    "lm_eval.evaluator",
    "lm_eval.tasks",
    "lm_eval.models.huggingface",
    "peftbench.stages.pipeline",
    "peftbench.stages.tuning",
    "peftbench.costs.task_switch",
)
# may differ between the worker and a job: set per job by Snakemake's shell from `threads:` (the child applies
# OMP_NUM_THREADS to torch itself) and its `tmpdir` resource, kept by the shell that starts the job, or this
# worker's own address
PER_JOB_VARS = frozenset(
    {
        "OMP_NUM_THREADS",
        "GOTO_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "TMPDIR",
        "TMP",
        "TEMPDIR",
        "TEMP",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        ENV,
    }
)
_HEADER = struct.Struct("!Q")  # the request's length, sent with the job's three file descriptors
_in_worker = False  # True in a job forked by the worker: delegate() there runs the job in place
_client = None  # in a forked job: a pidfd of the job's own process (the one Snakemake started and watches)


class JobStopped(RuntimeError):
    """A forked job's process (its client) has ended: Snakemake failed or stopped the job."""


def check_job_alive(what: object = "an output") -> None:
    """Before an output is renamed into place (peftbench.io): in a forked job, refuse when the job's own process
    has ended, since Snakemake has then declared the job failed and removed its outputs; an output that
    appeared now would be adopted by the next run. Outside the worker this does nothing."""
    if _client is None:
        return
    ended = select.select([_client], [], [], 0)[0]  # a pidfd is readable once its process has exited
    if ended:
        raise JobStopped(f"the job's process has ended (Snakemake stopped or failed the job): {what} not written")


# ---- the job's side -------------------------------------------------------------------------------------


def delegate() -> None:
    """First line of a job script. With a warm worker reachable, run this very script there and exit with its
    status; otherwise (no worker, not a local run, refused, or already in the worker) return: the script then
    runs in this process."""
    path = os.environ.get(ENV)
    if _in_worker or not path:
        return
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return  # no worker here (it ended, or this job runs on another host): run in this process
    with conn:
        request = pickle.dumps(
            {
                "argv": sys.argv,
                "cwd": os.getcwd(),
                "env": dict(os.environ),
                "python": _interpreter(),
                "client": os.getpid(),
            }
        )
        socket.send_fds(conn, [_HEADER.pack(len(request))], [0, 1, 2])
        conn.sendall(request)
        answer = _recv_exactly(conn, 1)
        if answer != b"A":  # refused (its reason follows), or the worker ended before it forked the job
            reason = conn.makefile("rb").read().decode(errors="replace") if answer == b"R" else "worker ended"
            print(f"peftbench warm worker: {reason}; this job runs in its own process", file=sys.stderr)
            return
        job = _recv_exactly(conn, 4)  # the forked job's pid (and process group)
        status = _recv_exactly(conn, 4) if len(job) == 4 else b""
    if len(status) < 4:
        if len(job) < 4:
            print("peftbench warm worker: the worker ended while starting this job", file=sys.stderr)
            sys.exit(1)
        # the worker is gone: so is the job (it dies with its worker, PR_SET_PDEATHSIG); make sure of it, and of
        # whatever it started, before Snakemake hears of the failure, so no output of this job appears afterwards
        _end_group(struct.unpack("!i", job)[0])
        print("peftbench warm worker: the worker ended while running this job; the job was stopped", file=sys.stderr)
        sys.exit(1)
    code = struct.unpack("!i", status)[0]
    if code < 0:
        print(f"peftbench warm worker: the job was killed by {signal.Signals(-code).name}", file=sys.stderr)
        sys.exit(128 - code)  # killed by signal N: 128 + N, as a shell reports it
    if code == 0:
        _outputs_written(sys._getframe(1).f_globals.get("snakemake"))
    sys.exit(code)


def _outputs_written(job) -> None:
    """A job that ended with status 0 has written its outputs; otherwise something in it ended the process early
    (os._exit, a library's exit) and Snakemake would blame "filesystem latency". Named here, as a failure."""
    outputs = list(getattr(job, "output", None) or [])
    missing = [o for o in outputs if not os.path.exists(o)]
    if missing:
        log = f" (its log: {job.log[0]})" if getattr(job, "log", None) else ""
        print(
            f"peftbench warm worker: the job ended with status 0 without writing {', '.join(missing)}: something "
            f"in it ended the process before its outputs were written (os._exit or a library's exit){log}",
            file=sys.stderr,
        )
        sys.exit(1)


def _interpreter() -> tuple[str, str, str]:
    """Which Python with which packages: a job of another environment (a rule's conda:) is not the worker's."""
    return sys.executable, sys.prefix, sys.version


def _end_group(pgid: int, within: float = 5.0) -> None:
    """SIGKILL the job's process group and wait until none of its processes can run again (gone or a zombie)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and _group_runs(pgid):
        time.sleep(0.01)


def _group_runs(pgid: int) -> bool:
    """Whether a process of group `pgid` exists that is not a zombie (a zombie writes nothing)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


# ---- the Snakemake process's side ---------------------------------------------------------------------------

_process = None


def start(workflow, cfg: dict) -> None:
    """Snakefile onstart: start the worker for a local run on the CPU; set ENV so that every job finds it.
    Not for SLURM and other executors (their jobs run elsewhere, under the scheduler's limits), nor for a GPU
    (a CUDA context does not survive fork), nor with `warm_worker: false` in the profile."""
    global _process
    import subprocess
    from pathlib import Path

    on_cpu = cfg.get("device", "auto") == "cpu" or (
        cfg.get("device", "auto") == "auto" and not Path("/dev/nvidiactl").exists()
    )
    local = workflow.local_exec and not (workflow.remote_exec or workflow.subprocess_exec)
    if not (cfg.get("warm_worker", True) and on_cpu and local) or _process is not None:
        return
    import tempfile

    logs = Path(".snakemake", "peftbench-worker").resolve()
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{os.getpid()}.log"
    sock = Path(tempfile.mkdtemp(prefix="peftbench-")) / "worker.sock"  # short: a socket path has <= 107 bytes
    with open(log, "w") as out:
        _process = subprocess.Popen(
            [sys.executable, "-m", "peftbench.warm_worker", str(sock), str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches Snakemake, which stops it
        )
    deadline = time.monotonic() + 30
    while not sock.exists() and _process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # it binds before it imports: jobs may connect at once and wait for the imports
    if sock.exists():
        os.environ[ENV] = str(sock)
    else:
        print(f"peftbench warm worker did not start (see {log}); every job runs in its own process", file=sys.stderr)


def stop() -> None:
    """Snakefile onsuccess/onerror: end the worker (it also ends by itself when Snakemake does)."""
    global _process
    import shutil
    import subprocess

    path = os.environ.pop(ENV, None)
    if _process is not None and _process.poll() is None:
        _process.terminate()
        try:
            _process.wait(10)
        except subprocess.TimeoutExpired:
            _process.kill()
    if path:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    _process = None


# ---- the worker ----------------------------------------------------------------------------------------------


def serve(path: str, owner: int) -> None:
    """Bind `path`, import PRELOAD, then fork one child per request until `owner` (Snakemake) ends or
    SIGTERM. A job whose client goes away (Snakemake killed the job) is killed with its process group."""
    import importlib

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    jobs: dict[int, tuple[socket.socket, str, float]] = {}  # pid -> (client connection, script, start)
    try:
        began, base_env = time.perf_counter(), dict(os.environ)
        for name in PRELOAD:
            importlib.import_module(name)
        # what the imports put in the environment (TOKENIZERS_PARALLELISM, ...): a fresh job's imports would too
        set_by_imports = {k: v for k, v in os.environ.items() if base_env.get(k) != v}
        _log(f"imported {len(PRELOAD)} modules in {time.perf_counter() - began:.2f} s; serving {path}")
        while not stopping and _alive(owner):
            conns = {c: pid for pid, (c, _, _) in jobs.items()}
            ready, _, _ = select.select([listener, *conns], [], [], 0.2)
            for s in ready:
                if s is listener:
                    conn, _ = listener.accept()
                    job = _fork(conn, listener, conns, base_env, set_by_imports)
                    if job:
                        jobs[job[0]] = (conn, job[1], time.perf_counter())
                elif not s.recv(1):  # the job's process ended before its child: Snakemake stopped the job
                    pid = conns[s]
                    _kill(pid)
                    _log(f"pid {pid}: {jobs.pop(pid)[1]} stopped: its job's process had ended")
                    s.close()
            _reap(jobs)
    finally:
        for pid in jobs:
            _kill(pid)
        listener.close()
        if os.path.exists(path):
            os.unlink(path)


def _fork(conn, listener, others, base_env, set_by_imports):
    """Read one request; refuse it, or fork its job. Returns (pid, script) or None. The job's environment
    must be the one the worker imported its libraries under, but for PER_JOB_VARS."""
    conn.settimeout(30)
    try:
        head, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        request = pickle.loads(_recv_exactly(conn, _HEADER.unpack(head)[0]))
    except (OSError, ValueError, struct.error, pickle.UnpicklingError, EOFError) as e:
        _log(f"a request could not be read: {e!r}")
        conn.close()
        return None
    conn.settimeout(None)
    env = request["env"]
    differs = sorted(k for k in set(env) | set(base_env) if k not in PER_JOB_VARS and env.get(k) != base_env.get(k))
    if request.get("python") != _interpreter():
        differs = ["the Python interpreter", *differs]
    if differs:
        conn.sendall(b"R" + f"the job's environment differs from the worker's in {', '.join(differs)}".encode())
        conn.close()
        for fd in fds:
            os.close(fd)
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    worker = os.getpid()
    pid = os.fork()
    if pid == 0:  # the job
        _die_with(worker)
        os.setpgid(0, 0)  # its own process group, before its client learns it: stopping the job stops what it started
        listener.close()
        for c in others:
            c.close()
        conn.sendall(b"A" + struct.pack("!i", os.getpid()))  # sent by the child: a job told "accepted" has been forked
        conn.close()
        _run_job({**request, "env": {**set_by_imports, **env}}, fds)
    for fd in fds:
        os.close(fd)
    script = os.path.basename(request["argv"][0])
    _log(f"pid {pid}: {script} in {request['cwd']}")
    return pid, script


def _run_job(request, fds) -> None:
    """In the child: become the job's process (its stdio, directory, argv, environment), run its script."""
    import atexit
    import runpy
    import tempfile
    import traceback

    global _in_worker, _client
    _in_worker = True
    code = 0
    try:
        if request.get("client"):
            try:
                _client = os.pidfd_open(request["client"])
            except ProcessLookupError:
                os._exit(1)  # the job's process ended before its job began
            except (OSError, AttributeError):  # no pidfd (old kernel): the worker's group kill still applies
                pass
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd, target in zip(fds, (0, 1, 2), strict=True):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdout.reconfigure(line_buffering=os.isatty(1))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        tempfile.tempdir = None  # found again from the job's TMPDIR
        if "OMP_NUM_THREADS" in os.environ:  # what a fresh process's OpenMP would have read at start-up
            import torch

            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int | None):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()  # what an interpreter's exit runs (tqdm, logging)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with(parent: int) -> None:
    """In a forked job: be SIGKILLed when the worker dies (kill -9 included), as the kernel guarantees with
    prctl(PR_SET_PDEATHSIG); a job left under PID 1 would train on and write its outputs after Snakemake has
    failed it. If the worker died before the request was made, end now."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the client's group kill (delegate) still ends the job
        pass
    if os.getppid() != parent:
        os._exit(1)


def _reap(jobs) -> None:
    while jobs:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid not in jobs:  # already answered for (its client went away)
            continue
        conn, script, began = jobs.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        # what the job's benchmark file cannot see (it watches the waiting process): the job's own CPU and memory
        cpu, rss = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
        _log(
            f"pid {pid}: {script} exited {code} after {time.perf_counter() - began:.1f} s, {cpu:.1f} s CPU, {rss:.0f} MB"
        )
        try:
            conn.sendall(struct.pack("!i", code))
        except OSError:
            pass
        conn.close()


def _kill(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        for _ in range(50):
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:  # reaped already
                return
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


if __name__ == "__main__":  # the worker runs this module's functions under its own name (delegate's flag)
    from peftbench import warm_worker

    warm_worker.serve(sys.argv[1], int(sys.argv[2]))
