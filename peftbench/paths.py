"""Where the project's own folders are: the repository root, which holds methods/, tasks/ and config/ (a pip install
of peftbench still reads them from the checkout it was installed from)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
