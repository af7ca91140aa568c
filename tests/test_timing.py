"""Where the time goes: Snakemake's benchmark files per rule kind, and fixed cost vs useful work."""

from peftbench import io
from peftbench.report import timing

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:{int(seconds):02d}\t1\t1\t1\t1\t0\t0\t50\t{seconds}\n")


def test_fixed_cost_is_job_time_minus_the_useful_part(tmp_path):
    for seed, (job, loop) in enumerate([(20.0, 15.0), (10.0, 5.0)]):
        bench(tmp_path / f"benchmarks/finetune/qa/lora/seed{seed}.tsv", job)
        io.write_json(tmp_path / f"m/qa/lora/seed{seed}/train.json", {"wall_time_s": loop})
    bench(tmp_path / "benchmarks/evaluate/qa/lora/seed0.tsv", 8.0)
    io.write_json(tmp_path / "m/qa/lora/seed0/lm_eval.json", {"peftbench": {"wall_time_s": 6.0}})
    bench(tmp_path / "benchmarks/data/qa.tsv", 2.0)
    (tmp_path / "benchmarks/summary.tsv").write_text(HEADER)  # a file with no row yet: not counted
    jobs = timing.jobs(tmp_path, "m")
    assert len(jobs) == 4
    table = timing.per_rule(jobs).set_index("rule")
    assert table.loc["finetune", "jobs"] == 2 and table.loc["finetune", "total s"] == 30.0
    assert table.loc["finetune", "fixed cost"] == "33%"  # (30 - 20) / 30
    assert table.loc["evaluate", "fixed cost"] == "25%" and table.loc["data", "fixed cost"] == "--"
    assert list(table.index) == ["finetune", "evaluate", "data"]  # most time first


def test_the_lr_search_jobs_have_their_useful_part_too(tmp_path):
    """A candidate's training loop is in its own train.json (seedN/tuning/lr_xF/); a tuned evaluation scores in
    seedN/tuned/, except where the paper's rate won and the job only copied that evaluation: no useful work."""
    bench(tmp_path / "benchmarks/finetune_candidate/qa/lora/seed0/lr_x3.tsv", 10.0)
    io.write_json(tmp_path / "m/qa/lora/seed0/tuning/lr_x3/train.json", {"wall_time_s": 6.0})
    for method, factor, job in (("lora", 3.0, 8.0), ("full", 1.0, 2.0)):
        bench(tmp_path / f"benchmarks/evaluate_tuned/qa/{method}/seed0.tsv", job)
        io.write_json(tmp_path / f"m/qa/{method}/seed0/tuning.json", {"chosen_factor": factor})
        io.write_json(tmp_path / f"m/qa/{method}/seed0/tuned/lm_eval.json", {"peftbench": {"wall_time_s": 6.0}})
    table = timing.per_rule(timing.jobs(tmp_path, "m")).set_index("rule")
    assert table.loc["finetune_candidate", "fixed cost"] == "40%"  # (10 - 6) / 10
    assert table.loc["evaluate_tuned", "fixed cost"] == "40%"  # (8 + 2 - 6 - 0) / 10: the copy did no scoring


def test_the_forgetting_measurement_is_useful_work_and_an_older_run_counts_it_as_fixed(tmp_path):
    for seed, forgetting in enumerate([{"wall_time_s": 3.0}, {}]):  # seed1: written before the time was recorded
        bench(tmp_path / f"benchmarks/evaluate/qa/lora/seed{seed}.tsv", 10.0)
        io.write_json(tmp_path / f"m/qa/lora/seed{seed}/lm_eval.json", {"peftbench": {"wall_time_s": 5.0}})
        io.write_json(tmp_path / f"m/qa/lora/seed{seed}/forgetting.json", forgetting)
    jobs = timing.jobs(tmp_path, "m").set_index("job")
    assert jobs.loc["qa/lora/seed0", "useful_s"] == 8.0 and jobs.loc["qa/lora/seed1", "useful_s"] == 5.0
    assert timing.per_rule(jobs.reset_index()).set_index("rule").loc["evaluate", "fixed cost"] == "35%"  # 7 / 20
