# Costs measured without training a model.

rule paper_scale:
    """Trainable parameters and task-checkpoint bytes of the papers' methods at the papers' scale (GPT-2 M/L,
    GPT-3 175B, RoBERTa, BERT-large, LLaMA-7B, built on the meta device: no weights, no memory, no download),
    each beside the figure its paper prints. The table is also in the log."""
    input:
        CODE / "config" / "paper_architectures.yaml",
        Path(pb_config.__file__).parent / "paper_scale.py",     # the library, wherever it is imported from
        Path(pb_config.__file__).parent / "paper_claims.py",
        sorted((CODE / "methods").glob("*/method.*")),      # the methods' own code and defaults are what is counted
    output: f"{R}/costs/paper_scale.csv"                     # written atomically by peftbench.paper_scale
    log: f"{R}/logs/paper_scale.log"
    shell: f"{sys.executable} -m peftbench.paper_scale --out {{output:q}} > {{log:q}} 2>&1"
