from peftbench import pipeline, report

with pipeline.logged(snakemake):
    report.render(snakemake.input[0], snakemake.output.md, snakemake.output.html, snakemake.params.expected)
