"""scripts/compare_claims.py: two runs' verdicts side by side; a decisive verdict reversed is a failure unless the
first run marked it fragile."""

import subprocess
import sys

import pandas as pd

from peftbench.paths import ROOT


def claims(folder, rows):
    (folder / "tables").mkdir(parents=True)
    pd.DataFrame(rows, columns=["claim", "where", "test", "estimate", "verdict", "flags", "p", "power"]).to_csv(
        folder / "tables" / "claims.csv", index=False
    )


def run(first, second):
    cmd = [sys.executable, str(ROOT / "scripts/compare_claims.py"), str(first), str(second)]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_a_reversed_verdict_fails_unless_it_was_marked_fragile(tmp_path):
    row = lambda claim, verdict, flags="": (claim, "qa", "", "+1 [0, 2]", verdict, flags, 0.01, "")  # noqa: E731
    claims(
        tmp_path / "a",
        [
            row("kept", "reproduced"),
            row("flip", "reproduced", "fragile: leaving seed 0 out"),
            row("new", "inconclusive at this budget"),
            row("lost", "contradicted"),
        ],
    )
    claims(
        tmp_path / "b",
        [
            row("kept", "reproduced"),
            row("flip", "contradicted"),
            row("new", "reproduced"),
            row("lost", "inconclusive at this budget (p = 0.2)"),
        ],
    )
    sys.path.insert(0, str(ROOT / "scripts"))
    from compare_claims import compare

    outcome = dict(zip(*compare(tmp_path / "a", tmp_path / "b")[["claim", "outcome"]].T.values, strict=True))
    assert outcome == {
        "kept": "same",
        "flip": "reversed (marked fragile)",
        "new": "newly decided",
        "lost": "decisive -> inconclusive",
    }
    assert run(tmp_path / "a", tmp_path / "b").returncode == 0
    claims(tmp_path / "c", [row("kept", "contradicted")])
    res = run(tmp_path / "a", tmp_path / "c")
    assert res.returncode == 1 and "1 decisive verdict(s) reversed without a fragile mark" in res.stdout
