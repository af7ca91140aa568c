"""The papers' own figures, each cited by table, that the report sets beside a run's:
`papers` (result tables: scores, trainable %) and `paper_claims` (parameter and storage figures that
peftbench.costs.paper_scale reproduces, each with the setting it was measured in)."""
