# Costs measured without training a model.
from peftbench import ROOT as PB_ROOT, paper_claims


rule paper_scale:
    """Trainable parameters and task-checkpoint bytes of the papers' methods at the papers' scale (GPT-2 M/L,
    GPT-3 175B, RoBERTa, BERT-large, LLaMA-7B, built on the meta device: no weights, no memory, no download),
    each beside the figure its paper prints. The table is also in the log."""
    input:
        # what peftbench.paper_scale reads, from the checkout the library is imported from: the architectures,
        # the claims, and the counted methods' own code and defaults (a new method folder changes nothing here)
        PB_ROOT / "config" / "paper_architectures.yaml",
        PB_ROOT / "peftbench" / "paper_scale.py",
        PB_ROOT / "peftbench" / "paper_claims.py",
        [PB_ROOT / "methods" / m / f for m in paper_claims.counted_methods() for f in ("method.yaml", "method.py")],
    output: f"{R}/costs/paper_scale.csv"                     # written atomically by peftbench.paper_scale
    benchmark: f"{R}/benchmarks/paper_scale.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{R}/logs/paper_scale.log"
    shell: f"{sys.executable} -m peftbench.paper_scale --out {{output:q}} > {{log:q}} 2>&1"
