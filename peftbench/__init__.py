"""peftbench: the library the Snakemake rules call. One module per stage of the DAG."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent     # the repository: methods/, tasks/, config/
