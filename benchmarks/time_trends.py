"""Bias and type I error of a calendar platform's comparison with the control under time trends,
for every choice of controls (concurrent, all) and time adjustment (none, stratified_by_period,
period_covariate).

    python benchmarks/time_trends.py                        # both cases, 2,000 trials per row
    python benchmarks/time_trends.py --case textbook --n-sims 200   # a smoke run
    python benchmarks/time_trends.py --markdown table.md    # also write the docs tables

Two cases. ``textbook``: the setting of the non-concurrent-control literature, a control and a
null arm from month 0 and a second null arm entering at month 12, every arm open to month 36
(fixed equal randomization, 20 patients a month, exponential PFS with median 4 months,
graduation when P(HR < 1) >= 0.99 after 30 patients, analyses every 6 months), without a trend,
with a common trend of -0.5 per year on every arm's log-hazard and with the same trend on the
control only (a strong trend, an assumption chosen to make the effect visible). ``pioneer``:
the shipped pioneer_platform on a no-drift null (pioneer_null), a common drift (common_drift:
control_drift with its trend on every regimen, so every PFS log-hazard falls 0.1 a year and the
arms stay equal to docetaxel at every date) and a control-only drift (control_drift: docetaxel's
log-hazard alone falls). Every analysis runs on the same simulated patients (one seed); all
experimental arms are null at calendar time 0. Per analysis and scenario it prints, with Monte
Carlo standard errors (MCSE):

* P(graduate), averaged over the null arms that entered (the per-arm type I error), its change
  from the same analysis on the first (no-drift) scenario of the case, paired trial by trial
  (the same seed gives the same patients), and P(graduate) among the arms that entered after
  month 0 (those with non-concurrent controls);
* P(any arm graduates), the family-wise error;
* the bias of the final effect estimate (log hazard ratio; the unadjusted posterior mean against
  the design's controls, or the period model's) for arms that entered, against the arm's effect
  relative to the control randomized at the same dates: 0 without drift or with a common drift;
  with a control-only drift of d per year, -d x (the arm's mean randomization month) / 12,
  the mean taken over the arm's patients by 3-month period.

In the pioneer case the graduation threshold is the shipped one (calibrated with concurrent controls, no adjustment,
on pioneer_null); the other analyses are not recalibrated, so compare each row's drift columns
with its own no-drift column. ``controls: all`` with ``stratified_by_period`` is refused by the
design check (within periods only concurrent controls exist) and is not a row.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

CHOICES = (
    ("concurrent", "none"),
    ("all", "none"),
    ("concurrent", "stratified_by_period"),
    ("concurrent", "period_covariate"),
    ("all", "period_covariate"),
)
SCENARIOS = ("pioneer_null", "common_drift", "control_drift")
GRADUATED = 3  # platform_sim.families.platform.GRADUATED (families are not imported by consumers)


def _mean_mcse(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def _ratio_mcse(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """sum(num) / sum(den) over trials with its delta-method MCSE (trials are independent)."""
    r = num.sum() / den.sum()
    resid = num - r * den
    return float(r), float(math.sqrt((resid**2).sum()) / den.sum())


def trend_per_year(scenario, treatment: str, endpoint: str) -> float:
    trend = scenario.time_trend.get(endpoint)
    if trend is None or (trend.treatments is not None and treatment not in trend.treatments):
        return 0.0
    return float(trend.per_year)


def summarize(res, scenario, design) -> dict:
    """The row of one analysis on one scenario (see the module docstring)."""
    ex = res.trials.extras
    status, opened = ex["platform_status"], ex["opened_at"]
    control = design.control_index
    arms = [k for k in range(status.shape[1]) if k != control]
    entered = np.isfinite(opened[:, arms])
    grad = (status[:, arms] == GRADUATED) & entered
    late = entered & (opened[:, arms] > 0)
    per_trial_rate = grad.sum(axis=1) / np.maximum(entered.sum(axis=1), 1)
    per_arm = _mean_mcse(per_trial_rate)
    late_rate = _ratio_mcse((grad & late).sum(axis=1).astype(float), late.sum(axis=1).astype(float))
    any_grad = _mean_mcse(grad.any(axis=1).astype(float))
    if "effect_adjusted" in ex:
        effect = ex["effect_adjusted"][:, arms]
    else:
        g = int(np.flatnonzero(res.trials.membership.all(axis=1))[0])
        name = "effect_all" if design.platform.controls == "all" else "effect_concurrent"
        effect = res.trials.estimates[name][:, arms, g]
    # the arm's log HR against the control randomized at the same dates
    ep = design.endpoint.name
    treatments = [a.treatment for a in design.arms]
    d_ctrl = trend_per_year(scenario, treatments[control], ep)
    n_period = ex["n_period"][:, :, arms].astype(float)  # (T, B, arms)
    width = float(ex["period_months"][0])
    mid = (np.arange(n_period.shape[1]) + 0.5) * width
    with np.errstate(invalid="ignore"):
        mean_month = (n_period * mid[None, :, None]).sum(axis=1) / n_period.sum(axis=1)
    shift = np.array([trend_per_year(scenario, treatments[k], ep) for k in arms]) - d_ctrl
    estimand = shift[None, :] * mean_month / 12.0
    err = np.where(entered, effect - estimand, np.nan)
    with np.errstate(invalid="ignore"):
        per_trial = np.nanmean(err, axis=1)
    bias = _mean_mcse(per_trial)
    return {"per_arm": per_arm, "late": late_rate, "any": any_grad, "bias": bias, "per_trial_rate": per_trial_rate}


def fmt(v: tuple[float, float], digits: int = 3) -> str:
    return f"{v[0]:.{digits}f} ± {v[1]:.{digits}f}"


TEXTBOOK_DESIGN = {
    "name": "textbook_staggered",
    "endpoint": {"name": "pfs", "direction": "higher_is_better"},
    "arms": [
        {"name": "control", "treatment": "control"},
        {"name": "null_a", "treatment": "null_a"},
        {"name": "null_b", "treatment": "null_b", "enter_months": 12},
    ],
    "control": "control",
    "randomization": {"method": "fixed", "scheme": "simple"},
    "clinically_relevant_difference": 0.1,
    "platform": {
        "max_duration_months": 36,
        "follow_up_months": 12,
        "assessment_weeks": 1,
        "interims": {"every_months": 6},
        "hazard_prior": {"shape": 0.01, "rate": 0.04},
        "graduation": {"by": "posterior", "graduate": 0.99, "min_n": 30},
    },
}
TEXTBOOK_TRENDS = {"no_trend": None, "common_trend": None, "control_trend": ["control"]}


def textbook_scenario(name: str) -> dict:
    """The homogeneous null scenario of the textbook case with its trend (see the module docstring)."""
    s = {
        "name": name,
        "endpoints": {"pfs": {"kind": "time_to_event"}},
        "treatments": {
            "control": {"outcomes": {"pfs": {"median_months": 4}}},
            "null_a": {"relative_to": "control"},
            "null_b": {"relative_to": "control"},
        },
    }
    if name != "no_trend":
        s["time_trend"] = {
            "pfs": {"per_year": -0.5, **({"treatments": TEXTBOOK_TRENDS[name]} if TEXTBOOK_TRENDS[name] else {})}
        }
    return s


def common_drift():
    """control_drift with its time trend on every treatment: the null at every date, with a period
    effect shared by the arms (the trend of the non-concurrent-control literature)."""
    from platform_sim import api

    drift = api.load_scenario("control_drift")
    trend = drift.time_trend["pfs"]
    return drift.replace(
        name="common_drift",
        time_trend={"pfs": {"per_year": trend.per_year}},
        description="control_drift with its time trend on every treatment",
    )


def cases(case: str, scenarios: str | None):
    """(case name, base design, [(scenario name, scenario)]) for the cases asked for."""
    from platform_sim import api
    from platform_sim.config.load import parse_design, parse_scenario

    if case in ("textbook", "both"):
        names = scenarios.split(",") if scenarios and case == "textbook" else list(TEXTBOOK_TRENDS)
        yield "textbook", parse_design(TEXTBOOK_DESIGN), [(n, parse_scenario(textbook_scenario(n))) for n in names]
    if case in ("pioneer", "both"):
        names = scenarios.split(",") if scenarios and case == "pioneer" else list(SCENARIOS)
        yield (
            "pioneer_platform",
            api.load_design("pioneer_platform"),
            [(n, common_drift() if n == "common_drift" else api.load_scenario(n)) for n in names],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=["textbook", "pioneer", "both"], default="both")
    parser.add_argument("--scenarios", default=None, help="comma-separated scenarios of one case (default: all)")
    parser.add_argument("--n-sims", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--markdown", default=None, help="write the tables as Markdown to this file")
    args = parser.parse_args()

    from platform_sim import api

    tables = []
    for case, base, scenarios in cases(args.case, args.scenarios):
        rows = []
        for scen_name, scenario in scenarios:
            for controls, adj in CHOICES:
                design = base.replace(platform__controls=controls, platform__time_adjustment=adj)
                t0 = time.perf_counter()
                res = api.run(design, scenario, n_sims=args.n_sims, seed=args.seed, workers=args.workers)
                row = summarize(res, scenario, design)
                seconds = time.perf_counter() - t0
                reference = next((r for n, c, a, r, _ in rows if (c, a) == (controls, adj)), None)
                row["change"] = (
                    None if reference is None else _mean_mcse(row["per_trial_rate"] - reference["per_trial_rate"])
                )
                rows.append((scen_name, controls, adj, row, seconds))
                change = "" if row["change"] is None else f"  change {fmt(row['change'])}"
                print(
                    f"{case:<17}{scen_name:<14}{controls:<11}{adj:<22}P(grad)/arm {fmt(row['per_arm'])}{change}  "
                    f"late {fmt(row['late'])}  any {fmt(row['any'])}  bias {fmt(row['bias'])}  "
                    f"({args.n_sims / seconds:,.0f} trials/s)",
                    flush=True,
                )
        tables.append((case, rows))
    if args.markdown:
        lines = []
        for case, rows in tables:
            lines += [
                f"Design `{case}`, {args.n_sims:,} simulated trials per row, seed {args.seed}; estimate ± MCSE.",
                "",
                "| scenario | controls | time adjustment | P(graduate) per null arm | change from no "
                "drift (paired) | P(graduate), arms entering after month 0 | P(any arm graduates) | bias of the "
                "final log HR | trials/s |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for scen_name, controls, adj, row, seconds in rows:
                change = "" if row["change"] is None else fmt(row["change"])
                lines.append(
                    f"| {scen_name} | {controls} | {adj} | {fmt(row['per_arm'])} | {change} | "
                    f"{fmt(row['late'])} | {fmt(row['any'])} | {fmt(row['bias'])} | "
                    f"{args.n_sims / seconds:,.0f} |"
                )
            lines.append("")
        with open(args.markdown, "w") as fh:
            fh.write("\n".join(lines))


if __name__ == "__main__":
    main()
