"""The papers' own figures, each cited by table, that the report sets beside a run's, as data (YAML) beside
the module that reads it: papers.yaml (result tables: scores, trainable %), read by `papers`, and
paper_figures.yaml (parameter and storage figures that peftbench.costs.paper_scale reproduces, each with the
setting it was measured in), read by `paper_figures`, which holds the papers' closed forms too."""
