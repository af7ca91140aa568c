"""Two runs' verdicts side by side (their reports/tables/claims.csv): which claim kept its verdict, which moved.

    python scripts/compare_claims.py reports reports/rerun

A verdict the first run called decisive (reproduced or contradicted) that the second run reverses is a failure of
the first run's interval, unless the first run had marked it fragile (leaving one seed out changed it); one that
turns inconclusive, or one inconclusive that turns decisive, is within what an interval at this budget allows."""

import sys
from pathlib import Path

import pandas as pd

DECISIVE = ("reproduced", "contradicted")


def kind(verdict: str) -> str:
    """reproduced / contradicted / inconclusive / not run, from the report's verdict text."""
    text = str(verdict)
    return next((k for k in (*DECISIVE, "not run") if text.startswith(k)), "inconclusive")


def compare(first: Path, second: Path) -> pd.DataFrame:
    a, b = (pd.read_csv(Path(d) / "tables" / "claims.csv") for d in (first, second))
    both = a.merge(b, on=["claim", "where"], how="outer", suffixes=("_1", "_2"))
    both["verdict_1"], both["verdict_2"] = both.verdict_1.map(kind), both.verdict_2.map(kind)
    fragile = both.flags_1.fillna("").str.contains("fragile")
    flipped = both.verdict_1.isin(DECISIVE) & both.verdict_2.isin(DECISIVE) & (both.verdict_1 != both.verdict_2)
    lost = both.verdict_1.isin(DECISIVE) & ~both.verdict_2.isin(DECISIVE)
    both["outcome"] = "same"
    both.loc[lost, "outcome"] = "decisive -> " + both.verdict_2[lost]
    both.loc[both.verdict_1.eq("inconclusive") & both.verdict_2.isin(DECISIVE), "outcome"] = "newly decided"
    both.loc[flipped, "outcome"] = "REVERSED"
    both.loc[flipped & fragile, "outcome"] = "reversed (marked fragile)"
    return both[["claim", "where", "verdict_1", "estimate_1", "verdict_2", "estimate_2", "flags_1", "outcome"]]


if __name__ == "__main__":
    table = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print(table.to_string(index=False))
    reversed_ = table.outcome.eq("REVERSED").sum()
    print(f"\n{len(table)} claims: {reversed_} decisive verdict(s) reversed without a fragile mark")
    sys.exit(1 if reversed_ else 0)
