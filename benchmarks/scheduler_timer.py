"""The Snakemake process's own CPU while it waits for running jobs, with Snakemake 9's default
`--max-jobs-per-timespan 100/1s` and with profiles/default's 1000/1m, side by side in one run of this script.

    python benchmarks/scheduler_timer.py

A throwaway workflow: 100 quick jobs (0.2 s) finish first, then 40 long ones wait on 2 cores. With the default,
every finished job leaves a 1 s timer that re-runs the job selection (input sizes of every ready job) for the rest
of the run; the profile's setting fires it once a minute. What the default run measured in its real Snakemake
process: 20.3 s of CPU per minute after 131 jobs (34% of one of the two cores). Prints CPU seconds per 20 s."""

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SNAKEFILE = """
rule all:
    input: expand("out/s{i}.txt", i=range(100)), expand("out/l{i}.txt", i=range(40))
rule short:
    input: expand("inp/f{k}.txt", k=range(12))
    output: "out/s{i}.txt"
    priority: 10
    shell: "sleep 0.2; touch {output}"
rule long:
    input: expand("inp/f{k}.txt", k=range(12))
    output: "out/l{i}.txt"
    shell: "sleep 1000; touch {output}"
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def idle_cpu(option: list[str]) -> float:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "Snakefile").write_text(SNAKEFILE)
        (Path(d) / "inp").mkdir()
        for k in range(12):
            (Path(d) / f"inp/f{k}.txt").write_text("x")
        snakemake = str(Path(sys.executable).parent / "snakemake")
        proc = subprocess.Popen(
            [snakemake, "--cores", "2", *option],
            cwd=d,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            while len(list((Path(d) / "out").glob("s*.txt"))) < 100:
                time.sleep(1)
            time.sleep(5)
            before = cpu_seconds(proc.pid)
            time.sleep(20)
            return cpu_seconds(proc.pid) - before
        finally:
            subprocess.run(["pkill", "-KILL", "-g", str(proc.pid)], check=False)
            proc.wait()
            shutil.rmtree(Path(d) / ".snakemake", ignore_errors=True)


if __name__ == "__main__":
    default = idle_cpu([])
    profile = idle_cpu(["--max-jobs-per-timespan", "1000/1m"])
    print(f"Snakemake's own CPU over 20 s of waiting: default 100/1s {default:.2f} s, 1000/1m {profile:.2f} s")
