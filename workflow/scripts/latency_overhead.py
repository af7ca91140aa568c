from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench import io
from peftbench.costs import latency_overhead
from peftbench.model import assemble
from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    assemble.set_threads(snakemake.threads)
    prompts = [r["prompt"] for r in io.read_jsonl(snakemake.input.test, required=("prompt",))]
    df = latency_overhead.run(
        snakemake.params.block, snakemake.input.base, snakemake.params.specs, prompts, snakemake.output[0]
    )
    print(df.to_string())
