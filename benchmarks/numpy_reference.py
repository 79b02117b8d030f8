"""A plain-numpy simulation of the core 4-arm design: the yardstick of the speed check.

The same design as ``designs/benchmark_four_arm.yaml`` on ``scenarios/benchmark_four_arm.yaml``
(event rates 0.25, 0.30, 0.22, 0.19, lower is better; looks every 100 patients from 400 to 2000;
response-adaptive randomization in proportion to P(best)^0.5 with the control at sqrt(k) : 1;
superiority 0.99 and inferiority 0.01 against the control), written the way a statistician would
write it with numpy alone: numpy's generator for patients and randomization, and every posterior
probability on one fixed grid of 1,024 points on [0, 1] (densities normalized on the grid, CDFs by
cumulative sums), vectorized over trials and arms. It leaves out the equivalence rule and the
adaptive quadrature, so it is a yardstick of the machine's numpy speed doing comparable work, not a
second implementation to check results against.

``tests/test_speed.py`` times it against the engine on the same number of trials in the same
process and fails when the engine is more than 30% slower.
"""

from __future__ import annotations

import numpy as np

RATES = np.array([0.25, 0.30, 0.22, 0.19])  # the scenario's event rates (lower is better)
LOOKS = np.arange(400, 2001, 100)
GRID = (np.arange(1024) + 0.5) / 1024  # midpoints on [0, 1]
SUPERIORITY, INFERIORITY, SOFTENING = 0.99, 0.01, 0.5


def simulate(n_trials: int, seed: int) -> dict[str, np.ndarray]:
    """Simulate ``n_trials`` trials; returns per-trial patients per arm (T, 4) and whether each arm was
    dropped (T, 4) and the look each trial stopped at (T,)."""
    rng = np.random.default_rng(seed)
    n_arms = RATES.size
    n = np.zeros((n_trials, n_arms))
    events = np.zeros((n_trials, n_arms))
    active = np.ones((n_trials, n_arms), dtype=bool)
    running = np.ones(n_trials, dtype=bool)
    stop_look = np.full(n_trials, len(LOOKS) - 1)
    alloc = np.full((n_trials, n_arms), 1.0 / n_arms)
    log_x, log_1mx = np.log(GRID), np.log1p(-GRID)
    previous = 0
    for look, total in enumerate(LOOKS):
        rows = np.flatnonzero(running)
        if rows.size == 0:
            break
        batch = total - previous
        previous = total
        arms_n = rng.multinomial(batch, alloc[rows])
        n[rows] += arms_n
        events[rows] += rng.binomial(arms_n, RATES)
        # posterior of 1 - rate (higher is better) on the grid, Beta(1 + non-events, 1 + events)
        a = 1.0 + n[rows] - events[rows]
        b = 1.0 + events[rows]
        log_pdf = (a - 1.0)[..., None] * log_x + (b - 1.0)[..., None] * log_1mx
        pdf = np.exp(log_pdf - log_pdf.max(axis=-1, keepdims=True))
        pdf /= pdf.sum(axis=-1, keepdims=True)
        cdf = np.cumsum(pdf, axis=-1)
        act = active[rows]
        # P(arm better than the control, arm 0) and P(best) among the active arms
        p_better = (pdf * (cdf[:, :1, :] - 0.5 * pdf[:, :1, :])).sum(axis=-1)
        cdf_active = np.where(act[..., None], cdf, 1.0)
        others = np.prod(cdf_active, axis=1, keepdims=True) / np.where(cdf_active > 0, cdf_active, 1.0)
        p_best = np.where(act, (pdf * others).sum(axis=-1), 0.0)
        p_best /= p_best.sum(axis=1, keepdims=True)
        dropped = act & (p_better < INFERIORITY)
        dropped[:, 0] = False
        winner = (act & (p_better > SUPERIORITY))[:, 1:].any(axis=1)
        active[rows] = act & ~dropped
        done = winner | (active[rows, 1:].sum(axis=1) == 0) | (look == len(LOOKS) - 1)
        stop_look[rows[done]] = look
        running[rows[done]] = False
        k = active[rows, 1:].sum(axis=1)
        share = np.where(active[rows], p_best, 0.0) ** SOFTENING
        share[:, 0] = 0.0
        share /= np.maximum(share.sum(axis=1, keepdims=True), 1e-300)
        control = np.sqrt(np.maximum(k, 1)) / (np.sqrt(np.maximum(k, 1)) + np.maximum(k, 1))
        alloc[rows] = share * (1.0 - control)[:, None]
        alloc[rows, 0] = control
        alloc[rows] /= alloc[rows].sum(axis=1, keepdims=True)
    return {"n": n, "dropped": ~active, "stop_look": stop_look}
