"""What a family's storyboard of one simulated trial is made of, and the shared patient table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..population import MISSING, REASON_NAMES


@dataclass
class Story:
    """One simulated trial told by its family: tidy tables and how it ended.

    ``analyses``: one row per interim analysis x arm x stratum; ``patients``: one row per
    screened patient; ``signatures`` and ``allocations`` (platforms): the graduation statistic
    in every signature at every analysis, and the allocation probabilities each time they
    changed; ``summary``: how the trial ended, in a few numbers; ``timeline``: 'looks' (the
    history is drawn against patients randomized), 'calendar' (against months) or 'events' (a test
    statistic against its boundaries at event counts).
    """

    analyses: pd.DataFrame
    patients: pd.DataFrame
    summary: dict = field(default_factory=dict)
    signatures: pd.DataFrame | None = None
    allocations: pd.DataFrame | None = None
    timeline: str = "looks"


def _levels(population, cohort_row, positions: np.ndarray) -> dict[str, np.ndarray]:
    """True and reported level names of every characteristic for the cohort positions."""
    pop = population
    cols: dict[str, np.ndarray] = {}
    for i, name in enumerate(pop.names):
        levels = np.array(list(pop.levels[i]) + [""], dtype=object)
        true = cohort_row["profile"][positions, i]
        seen = cohort_row["observed"][positions, i]
        cols[name] = levels[np.where(true == MISSING, len(levels) - 1, true)]
        cols[f"reported_{name}"] = levels[np.where(seen == MISSING, len(levels) - 1, seen)]
    return cols


def _cohort_row(enrolled, row: int) -> dict[str, np.ndarray]:
    c = enrolled.cohort
    return {
        "arrival": c.arrival[row],
        "profile": c.profile[row],
        "observed": c.observed[row],
        "reason": c.reason[row],
        "randomized_at": c.randomized_at[row],
    }


def screened_frame(
    population, arm_names, enrolled, row: int, n_screened: int, arm_of: dict[int, int], stratum_of: dict[int, str]
) -> pd.DataFrame:
    """Screened patients 0..n_screened-1 of the trial; ``arm_of`` / ``stratum_of`` map cohort
    positions of randomized patients to their arm index and stratum name."""
    cr = _cohort_row(enrolled, row)
    pos = np.arange(n_screened)
    names = list(arm_names)
    arm_idx = np.array([arm_of.get(int(p), -1) for p in pos])
    frame = pd.DataFrame(
        {
            "patient": pos,
            "arrival_months": cr["arrival"][pos],
            "ready_months": cr["randomized_at"][pos],
            "screening": np.array(REASON_NAMES, dtype=object)[cr["reason"][pos]],
            **_levels(population, cr, pos),
            "stratum": [stratum_of.get(int(p), "") for p in pos],
            "arm": np.array(names + [""], dtype=object)[np.where(arm_idx >= 0, arm_idx, len(names))],
        }
    )
    return frame
