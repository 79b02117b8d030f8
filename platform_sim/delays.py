"""Random outcome delays in designs with looks: who has an outcome at each look.

A patient randomized at month r has an outcome known at month r + D, where the delay D is drawn
per patient (:class:`~platform_sim.config.models.OutcomeDelay`): the endpoint's assessment time,
a fixed delay, a lognormal or a gamma with a given median; optionally rounded up to the next
scheduled assessment (RECIST scans every few weeks). Look ``j`` happens on the date its
``randomized_n[j]``-th patient is randomized; the patients followed there are those whose outcome
date falls on or before it. The last look is the final analysis and waits for every outcome. Their number then depends on the accrual of each simulated trial, as
in a real trial, instead of being fixed in advance by ``followed_n``.

Arrays are (T, N): T simulated trials, N patients in order of randomization. Times are in months.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from . import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from .streams import TIMING, TrialStreams

#: Weeks in a month of 30.4375 days (the project's calendar).
WEEKS_PER_MONTH = 30.4375 / 7.0


def delay_median_months(delay, assessment_months: float) -> float:
    """The median delay in months: the endpoint's ``assessment_months`` for ``distribution:
    endpoint``, ``median_weeks`` otherwise."""
    if delay.distribution == "endpoint":
        return float(assessment_months)
    return float(delay.median_weeks) / WEEKS_PER_MONTH


def draw_delays(delay, streams: TrialStreams, n: int, assessment_months: float) -> np.ndarray:
    """(T, n) months from randomization to a known outcome for the first ``n`` patients of each
    trial, from the stream ``timing:outcome_delay`` (one uniform per patient position, so a
    patient's delay does not depend on the design's other choices). ``delay``: an
    :class:`~platform_sim.config.models.OutcomeDelay`; ``assessment_months``: the endpoint's
    assessment time (used by ``distribution: endpoint``)."""
    median = delay_median_months(delay, assessment_months)
    shape = (streams.n_trials, n)
    if delay.distribution in ("endpoint", "fixed"):
        months = np.full(shape, median)
    else:
        u = streams.uniform(TIMING, "timing:outcome_delay", 0, n)
        if delay.distribution == "lognormal":
            from scipy.special import ndtri

            months = median * np.exp(delay.sdlog * ndtri(u))
        else:  # gamma with the given median: scale = median / (the median of a unit-scale gamma)
            from scipy.special import gammaincinv

            months = median * gammaincinv(delay.shape, u) / gammaincinv(delay.shape, 0.5)
    if delay.assessment_every_weeks is not None:
        every = float(delay.assessment_every_weeks) / WEEKS_PER_MONTH
        # the first scan at or after the delay (a relative tolerance keeps 12 weeks on the week-12 scan)
        months = np.ceil(months / every - 1e-9) * every
    return months


def look_dates(randomized_month: np.ndarray, randomized_n: np.ndarray) -> np.ndarray:
    """(T, J) month of each look: when its ``randomized_n[j]``-th patient is randomized.
    ``randomized_month`` (T, N): randomization month per position (NaN: a slot left empty)."""
    n = randomized_month.shape[1]
    so_far = np.fmax.accumulate(np.where(np.isnan(randomized_month), -np.inf, randomized_month), axis=1)
    so_far = np.where(np.isfinite(so_far), so_far, 0.0)
    return so_far[:, np.clip(np.asarray(randomized_n), 1, n) - 1]


def known_look(randomized_month: np.ndarray, delay_months: np.ndarray, randomized_n: np.ndarray) -> np.ndarray:
    """(T, N) int32: the first look at which each patient's outcome is known.

    A patient's outcome is known at look j < J - 1 when randomization month + delay <= the look's
    date (:func:`look_dates`) and the patient was randomized by look j (``randomized_n[j]``
    patients). The last look is the final analysis: it waits until every patient's outcome is
    known, so every patient is known there at the latest."""
    dates = look_dates(randomized_month, randomized_n)
    outcome_month = randomized_month + delay_months
    n = randomized_month.shape[1]
    n_looks = dates.shape[1]
    first = np.zeros(randomized_month.shape, dtype=np.int32)
    for j in range(n_looks - 1):  # loops over looks only
        first += dates[:, j, None] < outcome_month
    # the look whose batch holds each position: a patient is followed no earlier than randomized
    batch = np.searchsorted(np.asarray(randomized_n), np.arange(1, n + 1)).astype(np.int32)
    return np.maximum(first, batch[None, :])


def delayed_look_dates(randomized_month: np.ndarray, delay_months: np.ndarray, randomized_n: np.ndarray) -> np.ndarray:
    """(T, J) month of each look under random outcome delays: when its last patient is randomized,
    except the last look (the final analysis), held when the last outcome is known."""
    dates = look_dates(randomized_month, randomized_n)
    n_max = int(np.asarray(randomized_n)[-1])
    outcome_month = randomized_month[:, :n_max] + delay_months[:, :n_max]
    last = np.nanmax(np.where(np.isnan(outcome_month), -np.inf, outcome_month), axis=1)
    dates[:, -1] = np.maximum(dates[:, -1], last)
    return dates


def expected_followed(randomized_month: np.ndarray, delay_cdf, randomized_n: np.ndarray) -> np.ndarray:
    """(T, J) expected number followed at each look given the randomization months: sum over the
    patients randomized by the look of P(D <= look date - randomization month). ``delay_cdf``:
    vectorized distribution function of the delay in months. For checks against simulation."""
    dates = look_dates(randomized_month, randomized_n)
    out = np.zeros(dates.shape)
    for j, rn in enumerate(np.asarray(randomized_n)):
        gap = dates[:, j, None] - randomized_month[:, :rn]
        out[:, j] = np.where(np.isnan(gap), 0.0, delay_cdf(np.where(np.isnan(gap), 0.0, gap))).sum(axis=1)
    return out


def tally_known(
    arms: np.ndarray,
    outcomes: np.ndarray,
    arm_treatment: np.ndarray,
    known: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    n_arms: int,
    rows=None,
    upto: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Patients and events per arm, ``(R, K)`` each, among the patients of each row whose outcome
    becomes known between looks ``first[r]`` and ``last[r]`` (inclusive). ``arms`` (T, N) int8
    (-1: not randomized), ``outcomes`` (T, N, treatments) bool, ``known`` (T, N) from
    :func:`known_look`, ``arm_treatment`` (K,) column of each arm's treatment; ``rows`` (R,): the
    rows of these arrays to count (all when None), read in place rather than copied; ``upto``: only
    the first ``upto`` positions can count (e.g. those randomized by the look)."""
    rows = np.arange(arms.shape[0]) if rows is None else np.asarray(rows)
    return _tally_known(
        arms,
        outcomes,
        arm_treatment,
        known,
        rows.astype(np.int64),
        np.asarray(first, dtype=np.int64),
        np.asarray(last, dtype=np.int64),
        n_arms,
        arms.shape[1] if upto is None else min(int(upto), arms.shape[1]),
    )


@njit(cache=True)
def _tally_known(arms, outcomes, arm_treatment, known, rows, first, last, n_arms, m):
    n_rows = rows.size
    n = np.zeros((n_rows, n_arms), dtype=np.int64)
    y = np.zeros((n_rows, n_arms), dtype=np.int64)
    for i in range(n_rows):
        r = rows[i]
        for j in range(m):
            k = arms[r, j]
            if k >= 0 and first[i] <= known[r, j] <= last[i]:
                n[i, k] += 1
                if outcomes[r, j, arm_treatment[k]]:
                    y[i, k] += 1
    return n, y


@dataclass(frozen=True)
class DelaySchedule:
    """When outcomes are known in T trials with random outcome delays (N patients, J looks)."""

    known: np.ndarray  # (T, N) int32 first look at which each patient's outcome is known
    look_month: np.ndarray  # (T, J) month of each look
    last_outcome: np.ndarray  # (T, N) month the last outcome among patients 0..i is known


def delay_schedule(
    delay, streams: TrialStreams, randomized_month: np.ndarray, randomized_n: np.ndarray, assessment_months: float
) -> DelaySchedule:
    """Draw the patients' outcome delays (:func:`draw_delays`) and derive who is followed at each
    look and when the looks happen. ``randomized_month`` (T, N): randomization month per position."""
    n = randomized_month.shape[1]
    delays = draw_delays(delay, streams, n, assessment_months)
    outcome = np.where(np.isnan(randomized_month), -np.inf, randomized_month + delays)
    last = np.maximum.accumulate(outcome, axis=1)
    return DelaySchedule(
        known_look(randomized_month, delays, randomized_n),
        delayed_look_dates(randomized_month, delays, randomized_n),
        np.where(np.isfinite(last), last, 0.0),
    )
