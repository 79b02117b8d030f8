"""The fuzz and fault censuses' records: what was tried and what happened, written as JSON when the
environment variable PLATFORM_SIM_CENSUS names a directory, and printed as the tables of
docs/robustness.md by ``python tests/census.py DIR``.

Re-run both censuses and print the tables::

    PLATFORM_SIM_CENSUS=/tmp/census python -m pytest tests/test_fuzz_config.py tests/test_scale.py
    PLATFORM_SIM_CENSUS=/tmp/census python -m pytest -m slow tests/test_fuzz_config.py   # the larger census
    python tests/census.py /tmp/census
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

ENV = "PLATFORM_SIM_CENSUS"


def _folder() -> Path | None:
    where = os.environ.get(ENV)
    return Path(where) if where else None


def record_fault(fault: str, injected: str, outcome: str) -> None:
    """Append one injected fault and its outcome to DIR/faults.jsonl (nothing without the variable)."""
    folder = _folder()
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "faults.jsonl", "a") as fh:
        fh.write(json.dumps({"fault": fault, "injected": injected, "outcome": outcome}) + "\n")


def record_failure(outcome: str, details: str) -> None:
    """Append a failing mutant (counted rather than failing, when measuring) to DIR/failures.jsonl."""
    folder = _folder()
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "failures.jsonl", "a") as fh:
        fh.write(json.dumps({"outcome": outcome, "details": details}) + "\n")


def write_mutants(name: str, counts: dict) -> None:
    """Write one census run's counts (mutant class x outcome, and the settings) to DIR/NAME.json."""
    folder = _folder()
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(counts, indent=1, sort_keys=True) + "\n")


def _mutant_table(data: dict) -> list[str]:
    outcomes = data["outcome_names"]
    lines = [
        f"**{data['title']}**: {data['total']:,} mutants in {data['seconds']:.0f} s "
        f"({data['through_subprocess']} of them through a real `platform-sim` process)",
        "",
        "| mutant class | tried | " + " | ".join(outcomes) + " |",
        "|---|---:|" + "---:|" * len(outcomes),
    ]
    totals = Counter()
    for cls, row in sorted(data["by_class"].items()):
        tried = sum(row.values())
        totals.update(row)
        lines.append(f"| {cls} | {tried:,} | " + " | ".join(f"{row.get(o, 0):,}" for o in outcomes) + " |")
    lines.append(
        f"| **all** | **{sum(totals.values()):,}** | "
        + " | ".join(f"**{totals.get(o, 0):,}**" for o in outcomes)
        + " |"
    )
    files = data.get("by_file", {})
    if files:
        lines += ["", "Mutants per file: " + ", ".join(f"{f} {n}" for f, n in sorted(files.items()))]
    return lines


def tables(folder: Path) -> str:
    out = []
    for path in sorted(folder.glob("*.json")):
        out += _mutant_table(json.loads(path.read_text())) + [""]
    faults = folder / "faults.jsonl"
    if faults.is_file():
        rows = [json.loads(line) for line in faults.read_text().splitlines() if line.strip()]
        out += ["| fault injected | how | outcome |", "|---|---|---|"]
        out += [f"| {r['fault']} | {r['injected']} | {r['outcome']} |" for r in rows]
        out.append(f"\n{len(rows)} faults injected.")
    return "\n".join(out)


if __name__ == "__main__":
    print(tables(Path(sys.argv[1])))
