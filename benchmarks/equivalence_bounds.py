"""How often rigorous bounds settle the core design's equivalence check, and what that would save.

The core design (``designs/benchmark_four_arm.yaml``) checks equivalence with its first control
(P(|arm - control| < margin) > threshold) on the grid it builds for P(best) at every look, by adding
two copies of the control shifted by -margin and +margin. A look whose every comparator is certainly
below the threshold, or certainly above it, by twice the quadrature error allowed for (the 2e-4 of
``platform_sim.rules``), could build the grid of the arms alone. This script measures, for the
design on its benchmark scenario and on a null scenario (every arm at the control's 0.25):

* the grids of the decisions (first round of each trial with two or more arms at a look), those
  that check equivalence, and those whose check the bounds settle;
* on 3,000 of the latter rows drawn at random: process-CPU microseconds per row of the grid and its
  probabilities with the copies, with the copies switched off and with 4 components, mean nodes,
  and how far P(best) and P(arm > control) move between the two grids;
* whether every bound holds against the quadrature on those rows;
* the bound the rules use (``posterior.beta._within_upper``: from the arms' panels, before the
  copies are filled): the share of the sampled checks it settles, how far above the quadrature it
  lies, and the microseconds per row of ``best_row`` with it and without it (always the copies).

Bounds on P(|D| < m), D = X_k - X_c (every shape at least 1, so D's density is log-concave), from
P(|D| < m) = P(D > -m) - P(D >= m): the log-concave bounds of ``rules._log_concave_bounds``
(Grunbaum's 1/e on each side of the mean, the density bound, Cantelli); at most 2 m M (M the density
bound); and sub-Gaussian tails with variance proxy 1 / (4 (a + b + 1)) per posterior (Marchal and
Arbel, Electron. Commun. Probab. 2017;22:54).

    PYTHONPATH=$PWD python benchmarks/equivalence_bounds.py [N_TRIALS]
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GUARD = 2e-4  # twice rules._BOUND_GUARD, as the rules' own bounds use it
N_SAMPLE = 3000


def equivalence_bounds(a, b, a_c, b_c, margin):
    """(lower, upper) on P(|X_k - X_c| < margin), X_k ~ Beta(a, b), X_c ~ Beta(a_c, b_c), shapes >= 1."""
    from platform_sim import rules

    lower_minus, upper_minus = rules._log_concave_bounds(a, b, a_c, b_c, -margin)  # P(D > -m)
    lower_plus, upper_plus = rules._log_concave_bounds(a, b, a_c, b_c, margin)  # P(D > m)
    lower = max(lower_minus - upper_plus, 0.0)
    upper = min(upper_minus - lower_plus, 2.0 * margin * rules._difference_density_bound(a, b, a_c, b_c), 1.0)
    n, n_c = a + b, a_c + b_c
    mu = a / n - a_c / n_c
    proxy = 0.25 / (n + 1.0) + 0.25 / (n_c + 1.0)
    above = math.exp(-((margin - mu) ** 2) / (2 * proxy)) if margin > mu else 1.0  # P(D >= m)
    below = math.exp(-((mu + margin) ** 2) / (2 * proxy)) if mu > -margin else 1.0  # P(D <= -m)
    lower = max(lower, 1.0 - above - below)
    if mu > margin:
        upper = min(upper, math.exp(-((mu - margin) ** 2) / (2 * proxy)))  # P(D < m)
    if mu < -margin:
        upper = min(upper, math.exp(-((mu + margin) ** 2) / (2 * proxy)))  # P(D > -m)
    return lower, upper


def _capture(scenario, n_trials):
    """Run the design; return the inputs of every call of the compiled rules."""
    from platform_sim import rules
    from platform_sim.runner import run
    from platform_sim.spec import Spec

    calls = []
    original = rules._decide_with_control_compiled

    def recording(design, look, a, b, status, status_look, declared, control, control_changed, *rest):
        calls.append(
            (design, np.array(a, float), np.array(b, float), status.copy(), control.copy(), control_changed.copy())
        )
        return original(design, look, a, b, status, status_look, declared, control, control_changed, *rest)

    rules._decide_with_control_compiled = recording
    try:
        run(spec=Spec.load("benchmark_four_arm", scenario), n_sims=n_trials, seed=1)
    finally:
        rules._decide_with_control_compiled = original
    return calls


def _rows_with_bound():
    """A compiled loop: best_row on every row with the rules' ``below`` (0: the copies always filled)."""
    from numba import njit

    from platform_sim.posterior.beta import best_row

    @njit
    def rows(a, b, active, control, margin, compare, below, out, vs_control, within, scratch):
        n_comp = a.shape[1] + 2
        components = (np.empty(n_comp), np.empty(n_comp), np.zeros(n_comp), np.zeros(n_comp, dtype=np.bool_))
        for t in range(a.shape[0]):
            best_row(t, a, b, active, control, margin, compare, out, vs_control, within, components, scratch, below)

    return rows


def _panel_bound(a, b, active, control, margin, threshold, within6):
    """Share of rows the rules' panel bound settles, its mean excess over the quadrature, and the
    microseconds per row of best_row with and without it."""
    from platform_sim.posterior import beta

    rows = _rows_with_bound()
    n_rows, n_arms = a.shape
    scratch = beta.grid_scratch(n_arms + 2)
    every = np.ones(n_rows, dtype=bool)
    below = threshold - GUARD
    if not below > 0.0:
        raise ValueError(f"the threshold {threshold} leaves no room for the guard {GUARD}")
    times = {}
    skipped = np.zeros(n_rows, dtype=bool)
    for value in (0.0, below, 0.0, below):
        out, vs_control, within = np.zeros((n_rows, n_arms)), np.empty((n_rows, n_arms)), np.empty((n_rows, n_arms))
        rows(a, b, active, control, margin, every, value, out, vs_control, within, scratch)
        best = math.inf
        for _ in range(5):
            start = time.process_time()
            rows(a, b, active, control, margin, every, value, out, vs_control, within, scratch)
            best = min(best, time.process_time() - start)
        times[value] = min(times.get(value, math.inf), best / n_rows * 1e6)
        if value > 0:
            skipped = np.isnan(within).all(axis=1)
    upper = np.full((n_rows, n_arms), np.nan)
    components = (np.empty(n_arms + 2), np.empty(n_arms + 2), np.zeros(n_arms + 2), np.zeros(n_arms + 2, dtype=bool))
    bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep = scratch
    for t in range(n_rows):
        beta._best_components(t, a, b, active, control, margin, every, *components)
        n, q_n = beta._grid_layout(*components, bps, weights, work, aux, rep)
        beta._grid_components(0, n_arms, n, q_n, *components, pdf, cdf, g, work, logs, bits, wide, aux, rep, n_arms)
        beta._within_upper(t, n, q_n, n_arms, control[t], active, margin, g, aux, work, work[4])
        upper[t] = work[4][:n_arms]
    excess = upper - within6
    return skipped.mean(), np.nanmean(excess), np.nanmin(excess), times[0.0], times[below]


def _measure(scenario, n_trials):
    from platform_sim import rules
    from platform_sim.posterior import beta

    calls = _capture(scenario, n_trials)
    grids = checked = settled = 0
    rows = []
    for design, a, b, status, control, control_changed in calls:
        in_trial = (status == rules.ACTIVE) | (status == rules.CONTROL)
        for t in range(a.shape[0]):
            if in_trial[t].sum() < 2:
                continue
            grids += 1
            if design.equivalence_only_first and control_changed[t]:
                continue
            checked += 1
            c = control[t]
            sure = True
            for k in np.flatnonzero(in_trial[t]):
                if k == c:
                    continue
                lower, upper = equivalence_bounds(a[t, k], b[t, k], a[t, c], b[t, c], design.equivalence_margin)
                threshold = design.equivalence_probability
                sure &= upper < threshold - GUARD or lower > threshold + GUARD
            settled += sure
            rows.append((a[t], b[t], in_trial[t], c))
    print(f"{Path(str(scenario)).stem}: {n_trials} trials, {grids / n_trials:.2f} grids per trial;")
    print(f"  equivalence checked on {checked / grids:.1%} of them, settled by bounds on {settled / grids:.1%}")
    pick = np.random.default_rng(0).choice(len(rows), min(N_SAMPLE, len(rows)), replace=False)
    a = np.array([rows[i][0] for i in pick])
    b = np.array([rows[i][1] for i in pick])
    active = np.array([rows[i][2] for i in pick])
    control = np.array([rows[i][3] for i in pick], dtype=np.int64)
    n_rows, n_arms = a.shape
    margin = calls[0][0].equivalence_margin

    def grid(margin, compare):
        n_comp = n_arms + 2 if margin > 0 else n_arms
        out, vs_control, within = np.zeros((n_rows, n_arms)), np.empty((n_rows, n_arms)), np.empty((n_rows, n_arms))
        best = math.inf
        for _ in range(5):
            start = time.process_time()
            beta._prob_best_kernel(
                a, b, active, control, margin, compare, out, vs_control, within, *beta.grid_scratch(n_comp)
            )
            best = min(best, time.process_time() - start)
        scratch = beta.grid_scratch(n_comp)
        components = (np.empty(n_comp), np.empty(n_comp), np.zeros(n_comp), np.zeros(n_comp, dtype=np.bool_))
        nodes = 0
        for t in range(n_rows):
            beta._best_components(t, a, b, active, control, margin, compare, *components)
            nodes += beta._grid_fast(*components, *scratch, n_arms)
        return best / n_rows * 1e6, nodes / n_rows, out, vs_control, within

    every = np.ones(n_rows, dtype=bool)
    us6, nodes6, best6, vs6, within6 = grid(margin, every)
    us_off, _, best_off, _, _ = grid(margin, ~every)
    us4, nodes4, best4, vs4, _ = grid(0.0, every)
    print(f"  grid and probabilities: {us6:.2f} us ({nodes6:.0f} nodes) with the copies,")
    print(f"  {us_off:.2f} us with them switched off, {us4:.2f} us ({nodes4:.0f} nodes) with 4 components")
    print(
        f"  max |change| without the copies: P(best) {np.nanmax(abs(best6 - best4)):.2g}, "
        f"P(arm > control) {np.nanmax(abs(vs6 - vs4)):.2g}; switched off vs 4 components: "
        f"{np.nanmax(abs(best_off - best4)):.2g}"
    )
    violations = 0
    for t in range(n_rows):
        for k in np.flatnonzero(active[t]):
            if k != control[t]:
                lower, upper = equivalence_bounds(a[t, k], b[t, k], a[t, control[t]], b[t, control[t]], margin)
                violations += not (lower - 1e-9 <= within6[t, k] <= upper + 1e-9)
    print(f"  bounds violated by the quadrature on {violations} pairs")
    threshold = calls[0][0].equivalence_probability
    share, excess, least, us_full, us_bound = _panel_bound(a, b, active, control, margin, threshold, within6)
    print(
        f"  the rules' panel bound: settles {share:.1%} of the sampled checks, {excess:.3f} above the quadrature"
        f" on average (least {least:.2g}); best_row {us_full:.2f} us with the copies always, {us_bound:.2f} us with it"
    )
    share = settled / n_trials * (us6 - us4)
    print(f"  saving if settled grids left the copies out: about {share:.1f} us per trial")
    decided = np.where(np.isnan(within6), 0.0, within6)
    near = (abs(decided - threshold) <= GUARD).any(axis=1)
    all_below = (decided < threshold).all(axis=1)
    print(
        f"  by the quadrature, every comparator below the threshold on {all_below.mean():.1%} of the sampled "
        f"checks; bounds as tight as the quadrature would save about "
        f"{checked * (1 - near.mean()) / n_trials * (us6 - us4):.1f} us per trial"
    )


def main(n_trials: int = 2000) -> None:
    _measure("benchmark_four_arm", n_trials)
    text = (ROOT / "scenarios" / "benchmark_four_arm.yaml").read_text()
    with tempfile.TemporaryDirectory() as folder:
        null = Path(folder) / "benchmark_four_arm_null.yaml"
        lines = []
        for line in text.splitlines():
            if line.startswith("name:"):
                line = "name: benchmark_four_arm_null"
            elif "{rates: {event:" in line:  # every arm at the control's rate (benchmark assumption)
                line = line.split("{rates")[0] + "{rates: {event: 0.25}}"
            lines.append(line)
        null.write_text("\n".join(lines) + "\n")
        _measure(null, n_trials)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
