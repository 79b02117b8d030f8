"""Per-trial results of a batch of simulated trials: plain numpy arrays.

The leading axis of every array is the simulated trial (T trials), the second,
where present, the design arm (K arms, in design order) or the look (J looks).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

import numpy as np

# Final status of an arm.
ACTIVE = 0  # still randomizing when the trial stopped (not the control)
CONTROL = 1  # the common control when the trial stopped
SUPERIOR = 2
INFERIOR = 3  # includes a control replaced by a superior arm
FUTILE = 4
EQUIVALENT = 5
INELIGIBLE = 6  # stratified designs: the arm does not randomize in the stratum
STATUS_NAMES = ("active", "control", "superior", "inferior", "futile", "equivalent", "not_in_stratum")

# Why a trial stopped.
STOP_MAX = 0  # reached the last look (inconclusive unless an arm was declared superior there)
STOP_SUPERIORITY = 1
STOP_EQUIVALENCE = 2
STOP_ARMS_DROPPED = 3  # every comparator of the control was dropped (inferior or futile)
STOP_NAMES = ("max", "superiority", "equivalence", "arms_dropped")


@dataclass
class TrialResults:
    """Outcome of T simulated trials of one design on one scenario.

    Counts at the *final analysis* include every randomized patient (all
    outcomes eventually observed); ``*_followed`` counts are those available at
    the last adaptive analysis.
    """

    n: np.ndarray  # (T, K) int: patients randomized per arm
    responders: np.ndarray  # (T, K) int: events among them
    n_followed: np.ndarray  # (T, K) int: patients with outcome at the last look
    status: np.ndarray  # (T, K) int8: STATUS codes above
    status_look: np.ndarray  # (T, K) int16: look index at which the status was set (-1: never)
    declared_superior: np.ndarray  # (T, K) bool: crossed the superiority threshold at some look
    #   (declared best without a control; beat the control of the day with one, becoming the new control)
    post_mean: np.ndarray  # (T, K) float: posterior mean of the endpoint rate, final analysis
    post_lower: np.ndarray  # (T, K) float: 2.5% posterior quantile, final analysis
    post_upper: np.ndarray  # (T, K) float: 97.5% posterior quantile, final analysis
    prob_best: np.ndarray  # (T, K) float: P(best) among arms still in the trial at the final analysis (NaN: dropped)
    final_alloc: np.ndarray  # (T, K) float: last allocation probability used for each arm
    alloc_history: np.ndarray  # (T, J, K) float: allocation probabilities in force after each look (NaN after stop)
    stop_look: np.ndarray  # (T,) int16: index of the last look conducted
    stop_reason: np.ndarray  # (T,) int8: STOP codes above
    final_control: np.ndarray  # (T,) int8: arm index of the control at the end (-1: no control)
    n_screened: np.ndarray | None = None  # (T,) int: patients screened to randomize the trial's patients
    duration_months: np.ndarray | None = None  # (T,) months from opening to the last randomized patient's
    #   endpoint assessment (enrolment time plus the endpoint's assessment time)
    strata: "StrataResults | None" = None  # per arm x stratum results of a stratified design

    @property
    def n_trials(self) -> int:
        return self.n.shape[0]

    @property
    def n_total(self) -> np.ndarray:
        return self.n.sum(axis=1)

    @classmethod
    def concatenate(cls, parts: list["TrialResults"]) -> "TrialResults":
        out = {}
        for f in fields(cls):
            values = [getattr(p, f.name) for p in parts]
            if any(v is None for v in values):
                out[f.name] = None
            elif f.name == "strata":
                out[f.name] = StrataResults.concatenate(values)
            else:
                out[f.name] = np.concatenate(values)
        return cls(**out)


@dataclass
class StrataResults:
    """Per arm x stratum results of T trials (S strata, K arms)."""

    names: tuple[str, ...]
    n: np.ndarray  # (T, S, K) patients randomized
    responders: np.ndarray  # (T, S, K)
    status: np.ndarray  # (T, S, K) int8 status codes (INELIGIBLE: the arm does not run in the stratum)
    status_look: np.ndarray  # (T, S, K) int16
    declared: np.ndarray  # (T, S, K) bool: declared effective in the stratum
    post_mean: np.ndarray  # (T, S, K) posterior mean at the final analysis
    stop_look: np.ndarray  # (T, S) int16 look at which the stratum stopped deciding (-1: ran to the end)
    n_unrouted: np.ndarray | None = None  # (T,) randomizable patients screened whom no open stratum took

    @classmethod
    def concatenate(cls, parts: list["StrataResults"]) -> "StrataResults":
        out = {"names": parts[0].names}
        for f in dataclasses.fields(cls):
            if f.name != "names":
                values = [getattr(p, f.name) for p in parts]
                out[f.name] = None if any(v is None for v in values) else np.concatenate(values)
        return cls(**out)

