"""Check a scenario against its sources before simulating a trial: a generated cohort's
prevalences, co-occurrence, screening funnel and outcomes next to the configured (exact)
values, as tidy pandas tables with Monte Carlo standard errors.

The funnel is shown twice: as designs that wait for a biomarker result see it (assay failures,
turnaround, loss while waiting, ineligibility, no sample, no assignment, declining) and as designs
that need none see it (all-comer designs, single-arm two-stage designs, platforms without strata:
ineligibility and declining only), each simulated on the same screened patients."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import Scenario
from .outcomes import VirtualPatients
from .population import BLOCK, MISSING, RANDOMIZED, REASON_NAMES, Cohort, expected_funnel
from .streams import Streams

_ROW_PATIENTS = 8 * BLOCK
# The columns of the tables, also when they have no rows (a scenario without characteristics)
_PREVALENCE_COLUMNS = [
    "characteristic",
    "level",
    "configured",
    "simulated",
    "simulated_mcse",
    "reported_share",
    "missing_share",
]
_COOCCURRENCE_COLUMNS = [
    "given",
    "given_level",
    "characteristic",
    "level",
    "configured",
    "simulated",
    "simulated_mcse",
    "n_given",
]
_OUTCOME_COLUMNS = [
    "endpoint",
    "measure",
    "treatment",
    "characteristic",
    "level",
    "configured",
    "simulated",
    "simulated_mcse",
    "n",
]


@dataclass
class CohortSummary:
    scenario: Scenario
    n: int
    prevalence: pd.DataFrame
    cooccurrence: pd.DataFrame
    funnel: pd.DataFrame
    outcomes: pd.DataFrame
    patients: pd.DataFrame


def _flat(cohort: Cohort, n: int) -> Cohort:
    """The first ``n`` patients of a cohort's rows, as one row."""
    return Cohort(**{k: v.reshape((1, v.shape[0] * v.shape[1]) + v.shape[2:])[:, :n] for k, v in vars(cohort).items()})


def generate(
    patients: VirtualPatients, n: int, seed: int, biomarker_result: bool = True
) -> tuple[Cohort, dict[str, np.ndarray]]:
    """``n`` screened patients (flattened to one stream) and their potential outcomes on every
    endpoint under every treatment: ``{endpoint: (n, treatments)}``. ``biomarker_result``: screened
    for a design that waits for a biomarker result (the default) or for one that needs none."""
    rows = math.ceil(n / _ROW_PATIENTS)
    ts = Streams(seed).for_trials(np.arange(rows))
    carry = np.zeros(rows)
    parts, outs = [], {ep: [] for ep in patients.scenario.endpoints}
    treatments = list(patients.scenario.treatments)
    for b in range(_ROW_PATIENTS // BLOCK):
        block, carry = patients.population.block(ts, b, carry, biomarker_result=biomarker_result)
        parts.append(block)
        for ep in outs:
            outs[ep].append(patients.outcomes.potential(ts, b, block, ep, treatments))
    potentials = {ep: np.concatenate(v, axis=1).reshape(-1, len(treatments))[:n] for ep, v in outs.items()}
    return _flat(Cohort.concatenate(parts), n), potentials


def screening_without_assay(patients: VirtualPatients, n: int, seed: int) -> np.ndarray:
    """(n,) screening reasons of the patients :func:`generate` gives, screened for a design that
    needs no biomarker result (no assay: ineligibility and declining only)."""
    rows = math.ceil(n / _ROW_PATIENTS)
    ts = Streams(seed).for_trials(np.arange(rows))
    carry = np.zeros(rows)
    parts = []
    for b in range(_ROW_PATIENTS // BLOCK):
        block, carry = patients.population.block(ts, b, carry, biomarker_result=False)
        parts.append(block)
    return _flat(Cohort.concatenate(parts), n).reason[0]


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else math.nan


def summarize(patients: VirtualPatients, n: int = 100_000, seed: int = 1) -> CohortSummary:
    pop = patients.population
    cohort, potentials = generate(patients, n, seed)
    profile = cohort.profile[0]
    observed = cohort.observed[0]
    reason = cohort.reason[0]
    randomized = reason == RANDOMIZED
    codes, prob = pop.distribution()

    rows = []
    for i, (name, levels) in enumerate(zip(pop.names, pop.levels)):
        got = observed[randomized, i]
        reported = got != MISSING
        for lv_i, lv in enumerate(levels):
            exact = float(prob[codes[:, i] == lv_i].sum())
            sim = float((profile[:, i] == lv_i).mean())
            rows.append(
                {
                    "characteristic": name,
                    "level": lv,
                    "configured": exact,
                    "simulated": sim,
                    "simulated_mcse": _se(sim, n),
                    "reported_share": float((got[reported] == lv_i).mean()) if reported.any() else math.nan,
                    "missing_share": float(1 - reported.mean()) if randomized.any() else math.nan,
                }
            )
    prevalence = pd.DataFrame(rows, columns=_PREVALENCE_COLUMNS)

    rows = []
    for a, b in _related_pairs(patients):
        ia, ib = pop.index[a], pop.index[b]
        for la in range(len(pop.levels[ia])):
            in_a = codes[:, ia] == la
            pa = float(prob[in_a].sum())
            sim_a = profile[:, ia] == la
            for lb in range(1, len(pop.levels[ib])):
                exact = float(prob[in_a & (codes[:, ib] == lb)].sum()) / pa if pa > 0 else math.nan
                k = int(sim_a.sum())
                sim = float((profile[sim_a, ib] == lb).mean()) if k else math.nan
                rows.append(
                    {
                        "given": a,
                        "given_level": pop.levels[ia][la],
                        "characteristic": b,
                        "level": pop.levels[ib][lb],
                        "configured": exact,
                        "simulated": sim,
                        "simulated_mcse": _se(sim, k),
                        "n_given": k,
                    }
                )
    cooccurrence = pd.DataFrame(rows, columns=_COOCCURRENCE_COLUMNS)

    expected = expected_funnel(patients.scenario.population)
    expected_no_assay = expected_funnel(patients.scenario.population, biomarker_result=False)
    reason_no_assay = screening_without_assay(patients, n, seed)
    funnel = pd.DataFrame(
        [
            {
                "reason": r,
                "expected": expected[r],
                "simulated": float((reason == code).mean()),
                "simulated_mcse": _se(float((reason == code).mean()), n),
                "expected_without_assay": expected_no_assay[r],
                "simulated_without_assay": float((reason_no_assay == code).mean()),
                "simulated_without_assay_mcse": _se(float((reason_no_assay == code).mean()), n),
            }
            for code, r in enumerate(REASON_NAMES)
        ]
    )
    waited = randomized & (cohort.wait_days[0] > 0)
    funnel.attrs["median_wait_days"] = float(np.median(cohort.wait_days[0][waited])) if waited.any() else 0.0

    outcomes = _outcome_table(
        patients, profile[randomized], {k: v[randomized] for k, v in potentials.items()}, codes, prob
    )
    table = _patients_frame(patients, cohort, potentials)
    table["screening_without_assay"] = pd.Categorical.from_codes(
        reason_no_assay.astype(int), categories=list(REASON_NAMES)
    )
    return CohortSummary(patients.scenario, n, prevalence, cooccurrence, funnel, outcomes, table)


def _related_pairs(patients: VirtualPatients) -> list[tuple[str, str]]:
    """(parent, child) pairs of the conditional tables and of the derived markers."""
    pairs = []
    conf = patients.scenario.population
    for name, marker in conf.markers.items():
        pairs += [(g, name) for g in marker.given]
    for name, d in conf.derived.items():
        pairs += [(m, name) for m, _ in d.conditions]
    return list(dict.fromkeys(pairs))


def _outcome_table(patients, profile, potentials, codes, prob) -> pd.DataFrame:
    """Exact and simulated outcome of every treatment overall and in every level of every
    characteristic that enters an outcome model."""
    pop, out = patients.population, patients.outcomes
    treatments = list(patients.scenario.treatments)
    rows = []
    for ep, e in patients.scenario.endpoints.items():
        strata = [(None, None)] + [
            (name, lv)
            for name in patients._relevant_markers(ep, treatments)
            for lv in range(len(pop.levels[pop.index[name]]))
        ]
        for k, t in enumerate(treatments):
            values = potentials[ep][:, k]
            for name, lv in strata:
                if name is None:
                    mask_exact, mask_sim = np.ones(len(prob), dtype=bool), np.ones(len(values), dtype=bool)
                    level = "all"
                else:
                    i = pop.index[name]
                    mask_exact, mask_sim = codes[:, i] == lv, profile[:, i] == lv
                    level = pop.levels[i][lv]
                if prob[mask_exact].sum() <= 0:
                    continue
                exact = out.expected(ep, t, codes[mask_exact], prob[mask_exact])
                v = values[mask_sim]
                if e.kind == "time_to_event":
                    sim = float(np.median(v)) if v.size else math.nan
                    se = _median_se(out, ep, t, codes[mask_exact], prob[mask_exact], exact, v.size)
                    measure = "median_months"
                else:
                    sim = float(v.mean()) if v.size else math.nan
                    se = _se(sim, v.size)
                    measure = "probability"
                rows.append(
                    {
                        "endpoint": ep,
                        "measure": measure,
                        "treatment": t,
                        "characteristic": name or "all",
                        "level": level,
                        "configured": exact,
                        "simulated": sim,
                        "simulated_mcse": se,
                        "n": int(v.size),
                    }
                )
    return pd.DataFrame(rows, columns=_OUTCOME_COLUMNS)


def _median_se(out, ep, t, codes, prob, median, n) -> float:
    """Asymptotic standard error of a sample median, 1 / (2 f(m) sqrt(n)), with the exact density."""
    if not n or not math.isfinite(median):
        return math.nan
    p = prob / prob.sum()
    h = max(1e-4, 1e-3 * median)
    s = [float(p @ np.exp(-out.cumulative_hazard(ep, t, codes, x))) for x in (median - h, median + h)]
    density = (s[0] - s[1]) / (2 * h)
    return 1.0 / (2.0 * density * math.sqrt(n)) if density > 0 else math.nan


def _patients_frame(patients, cohort: Cohort, potentials) -> pd.DataFrame:
    pop = patients.population
    cols: dict[str, object] = {
        "patient": np.arange(cohort.arrival.shape[1]),
        "arrival_month": cohort.arrival[0],
        "wait_days": cohort.wait_days[0],
        "screening": pd.Categorical.from_codes(cohort.reason[0].astype(int), categories=list(REASON_NAMES)),
    }
    for i, (name, levels) in enumerate(zip(pop.names, pop.levels)):
        cols[name] = pd.Categorical.from_codes(cohort.profile[0][:, i].astype(int), categories=levels)
        cols[f"{name}_reported"] = pd.Categorical.from_codes(cohort.observed[0][:, i].astype(int), categories=levels)
    for ep, values in potentials.items():
        for k, t in enumerate(patients.scenario.treatments):
            cols[f"{ep}_{t}"] = values[:, k]
    return pd.DataFrame(cols)


def format_summary(summary: CohortSummary, digits: int = 3) -> str:
    """A plain-text report of a :class:`CohortSummary`."""
    s = summary.scenario
    out = [f"scenario {s.name}: {summary.n:,} screened virtual patients (population {s.population.name})", ""]

    def pm(v, se, d=digits):
        return "nan" if not np.isfinite(v) else f"{v:.{d}f} ± {se:.{d}f}" if np.isfinite(se) else f"{v:.{d}f}"

    def table(frame: pd.DataFrame, columns: list[tuple[str, object]]) -> list[str]:
        cells = [[h for h, _ in columns]] + [[f(r) for _, f in columns] for _, r in frame.iterrows()]
        widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
        lines = [
            "  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))) for row in cells
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return lines

    out.append("Prevalence (true profile; 'reported' = screening result among randomized patients)")
    if summary.prevalence.empty:
        out.append("(the population has no biomarkers or clinical characteristics: every patient is alike)")
    else:
        out += table(
            summary.prevalence,
            [
                ("characteristic", lambda r: r["characteristic"]),
                ("level", lambda r: r["level"]),
                ("configured", lambda r: f"{r['configured']:.{digits}f}"),
                ("simulated", lambda r: pm(r["simulated"], r["simulated_mcse"])),
                ("reported", lambda r: f"{r['reported_share']:.{digits}f}"),
                ("missing", lambda r: f"{r['missing_share']:.{digits}f}"),
            ],
        )
    if (summary.prevalence["characteristic"] == "region").any():
        out.append(
            "(region: configured = steady-state shares of the accrual rates; the cohort also covers ramp-up "
            "and later-starting regions, so its shares differ)"
        )
    if not summary.cooccurrence.empty:
        out += ["", "Co-occurrence: P(characteristic = level | given = given level)"]
        out += table(
            summary.cooccurrence,
            [
                ("given", lambda r: f"{r['given']}={r['given_level']}"),
                ("characteristic", lambda r: f"{r['characteristic']}={r['level']}"),
                ("configured", lambda r: f"{r['configured']:.{digits}f}"),
                ("simulated", lambda r: pm(r["simulated"], r["simulated_mcse"])),
            ],
        )
    out += [
        "",
        "Screening funnel",
        "  with the assay: designs that wait for a biomarker result (strata, sub-studies, platforms with strata); "
        f"median wait {summary.funnel.attrs.get('median_wait_days', 0):.1f} days among randomized patients who were "
        "tested",
        "  without: designs that need none (all-comer, single-arm two-stage, platforms without strata); no assay, "
        "no wait, ineligibility and declining only",
    ]
    out += table(
        summary.funnel,
        [
            ("reason", lambda r: r["reason"]),
            ("", lambda r: ""),
            ("with the assay: expected", lambda r: f"{r['expected']:.{digits}f}"),
            ("simulated", lambda r: pm(r["simulated"], r["simulated_mcse"])),
            ("without: expected", lambda r: f"{r['expected_without_assay']:.{digits}f}"),
            ("simulated", lambda r: pm(r["simulated_without_assay"], r["simulated_without_assay_mcse"])),
        ],
    )
    out += ["", "Outcomes of randomized patients by treatment and stratum (configured: exact, at calendar time 0)"]
    if s.time_trend:
        out.append("(the scenario has a time trend: simulated values average over the cohort's calendar time)")
    out += table(
        summary.outcomes,
        [
            (
                "endpoint",
                lambda r: f"{r['endpoint']} ({'median, months' if r['measure'] == 'median_months' else 'rate'})",
            ),
            (
                "treatment / stratum",
                lambda r: (
                    r["treatment"] + ("" if r["characteristic"] == "all" else f" | {r['characteristic']}={r['level']}")
                ),
            ),
            ("configured", lambda r: f"{r['configured']:.{digits}f}"),
            ("simulated", lambda r: pm(r["simulated"], r["simulated_mcse"])),
            ("n", lambda r: f"{r['n']:,}"),
        ],
    )
    return "\n".join(out)


__all__ = ["CohortSummary", "format_summary", "generate", "summarize"]
