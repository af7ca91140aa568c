"""python -m peftbench.report [--configfile PROFILE]: the report from results/ (peftbench.report.report)."""

from peftbench.report.report import main

main()
