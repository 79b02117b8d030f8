"""One yardstick for designs of every kind: claims per treatment x subgroup of patients.

Designs make claims in their own subgroups: all patients (all-comer designs), a
stratum or sub-study, a signature. To put an all-comer design and a
biomarker-selected design on the same scale, every claim is read on a subgroup
structure the *scenario* defines: the levels of the true characteristics its
``yardstick.by`` names (``trop2_nmr=positive``, ``trop2_nmr=negative``). In each such
subgroup a treatment is judged against the standard of care on one endpoint:

* it **works** there when its exact effect reaches the relevant size;
* it is **null** there when it is no better than the standard of care (harm included);
* otherwise it is in a grey zone (a claim is neither true nor false).

A design's claim for a treatment covers the patients of the subgroups it was made
in, by the design's definitions read on true characteristics (as a label would be
read). It counts as a claim in every yardstick subgroup whose patients it reaches:
the label recommends the treatment to them. A claim for all patients therefore
counts in every subgroup: true where the treatment works there, false where it is
null. A claim in a stratum counts in each subgroup the stratum shares patients
with, so a claim for TROP2-positive patients is a false claim in an STK11-wild-type
subgroup where the treatment is null, whichever markers the yardstick is read on.

Patients are counted per subgroup exactly in expectation: the patients a trial
randomized to an arm in a stratum, times the exact share of each subgroup among the
patients that stratum randomizes (screening, misclassification and routing
included). A patient's arm does not depend on their own profile within a stratum,
so these per-trial counts have the expectation of the true counts.

Cost: ``costs.assay_per_patient`` for every patient screened by a design that needs
a biomarker result before randomizing, plus ``costs.per_randomized_patient`` for
every patient randomized.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import ConfigError, Design, Problem, Scenario
from .outcomes import VirtualPatients
from .results import TrialResults
from .spec import Spec

_TOL = 1e-9

#: Trial-level yardstick values, with their meaning.
TRIAL_METRICS = {
    "fwer": "at least one false claim: a treatment claimed in a subgroup where it is no better than the standard of "
    "care",
    "power": "at least one true claim: a treatment claimed in a subgroup where it works (disjunctive power)",
    "p_correct_finding": "no false claim, and every treatment claimed in every subgroup where it works",
    "p_any_claim": "at least one claim",
    "n_screened": "patients screened",
    "n_randomized": "patients randomized",
    "n_assayed": "patients whose biomarkers were tested (designs that need a result before randomizing)",
    "n_on_effective": "patients randomized to a treatment that works in their subgroup",
    "n_on_ineffective": "patients randomized to a treatment that is no better than the standard of care in their "
    "subgroup",
    "n_on_control": "patients randomized to the standard of care",
    "expected_responders": "expected patients with the yardstick endpoint's event (binary and landmark endpoints)",
    "months_to_first_true_claim": "months from the opening to the first true claim (trials with one)",
    "duration_months": "months from the opening to the last analysis",
    "cost": "assay cost of the screened patients (designs that need a biomarker result) plus the cost of the "
    "randomized patients",
}
#: Per-treatment values.
DRUG_METRICS = {
    "power": "the treatment claimed in at least one subgroup where it works (NaN where it works nowhere)",
    "p_false_claim": "the treatment claimed in at least one subgroup where it is null",
    "p_claimed": "the treatment claimed in at least one subgroup",
}
#: Per treatment x subgroup values.
CELL_METRICS = {
    "p_claimed": "the treatment claimed in the subgroup: power where it works, a false-positive rate where it is null",
    "n": "patients of the subgroup randomized to the treatment (exact in expectation)",
}


@dataclass(frozen=True)
class Yardstick:
    """What is true in a scenario per treatment (D) and subgroup (Y), on one endpoint.

    ``value`` (D, Y): the treatment's exact endpoint value among the subgroup's randomizable
    patients (a rate, or a median time in months); ``reference`` (Y,): the standard of care's;
    ``effect`` (D, Y): a rate difference, or a log hazard ratio; ``works`` / ``null`` (D, Y): see the
    module docstring. ``relevant``: the relevant size on the effect's scale.
    """

    scenario: str
    endpoint: str
    control: str
    by: tuple[str, ...]
    subgroups: tuple[str, ...]
    share: np.ndarray  # (Y,)
    treatments: tuple[str, ...]
    value: np.ndarray  # (D, Y)
    reference: np.ndarray  # (Y,)
    effect: np.ndarray  # (D, Y)
    works: np.ndarray  # (D, Y) bool
    null: np.ndarray  # (D, Y) bool
    relevant: float
    survival: bool
    higher_is_better: bool
    levels: tuple[tuple[int, ...], ...]  # (Y,) the level codes of ``by`` that define each subgroup
    characteristics: tuple[int, ...]  # population indices of ``by``

    @property
    def value_name(self) -> str:
        return "median (months)" if self.survival else "rate"

    @property
    def effect_scale(self) -> str:
        return "log hazard ratio" if self.survival else "rate difference"

    def role(self, d: int, y: int) -> str:
        return "works" if self.works[d, y] else "null" if self.null[d, y] else "grey zone"

    @property
    def global_null(self) -> bool:
        """Every treatment is null in every subgroup."""
        return bool(self.null.all())

    def subgroup_of(self, codes: np.ndarray) -> np.ndarray:
        """(R,) the subgroup of each true profile ``codes`` (R, C)."""
        if not self.by:
            return np.zeros(codes.shape[0], dtype=np.int64)
        key = codes[:, list(self.characteristics)].astype(np.int64)
        index = {lv: y for y, lv in enumerate(self.levels)}
        return np.array([index[tuple(row)] for row in key], dtype=np.int64)

    def frame(self):
        """The truth as a tidy table: one row per treatment x subgroup."""
        import pandas as pd

        rows = []
        for d, t in enumerate(self.treatments):
            for y, sub in enumerate(self.subgroups):
                rows.append(
                    {
                        "treatment": t,
                        "subgroup": sub,
                        "share": float(self.share[y]),
                        "value": float(self.value[d, y]),
                        "reference": float(self.reference[y]),
                        "effect": float(self.effect[d, y]),
                        "role": self.role(d, y),
                    }
                )
        return pd.DataFrame(rows)


def _relevant_size(design: Design, survival: bool) -> float | None:
    if survival:
        event_driven = getattr(design, "event_driven", None)
        if event_driven is not None:
            return float(event_driven.relevant_hazard_ratio or event_driven.hazard_ratio)
        platform = getattr(design, "platform", None)
        return None if platform is None else float(platform.working_hazard_ratio)
    return float(design.clinically_relevant_difference)


def settle(scenario: Scenario, designs: Sequence[Design], file: str | None = None) -> tuple[str, str, float, bool]:
    """The yardstick's endpoint, standard of care, relevant size (a rate difference, or a hazard
    ratio) and direction (higher is better) for ``designs`` on ``scenario``: the scenario's
    ``yardstick`` section where it says, the designs' common choice where it does not; a
    :class:`ConfigError` when the designs disagree and the scenario does not decide."""
    y = scenario.yardstick
    problems = []
    endpoints = sorted({d.endpoint.name for d in designs})
    endpoint = y.endpoint
    if endpoint is None:
        if len(endpoints) != 1:
            problems.append(
                Problem(
                    "yardstick.endpoint",
                    f"the designs analyse different endpoints ({endpoints}); "
                    "name the endpoint every design is judged on",
                    None,
                    file=file,
                )
            )
        else:
            endpoint = endpoints[0]
    control = y.control
    if control is None:
        roots = sorted(n for n, t in scenario.treatments.items() if t.relative_to is None)
        if len(roots) != 1:
            problems.append(
                Problem(
                    "yardstick.control",
                    f"several treatments are not relative_to another ({roots}); "
                    "name the standard of care the others are judged against",
                    None,
                    file=file,
                )
            )
        else:
            control = roots[0]
    if problems:
        raise ConfigError(problems)
    assert endpoint is not None and control is not None
    survival = scenario.endpoints[endpoint].kind == "time_to_event"
    relevant: float | None = y.relevant_hazard_ratio if survival else y.relevant_difference
    if relevant is None:
        sizes = [(d.name, _relevant_size(d, survival)) for d in designs if d.endpoint.name == endpoint]
        found = sorted({v for _, v in sizes if v is not None})
        if len(found) != 1:
            key = "relevant_hazard_ratio" if survival else "relevant_difference"
            listing = ", ".join(f"{n}: {v:g}" for n, v in sizes if v is not None)
            what = f"the designs' relevant sizes differ ({listing})" if found else "no design gives a relevant size"
            raise ConfigError([Problem(f"yardstick.{key}", f"{what}; set it in the scenario", None, file=file)])
        relevant = found[0]
    directions = {d.endpoint.direction for d in designs if d.endpoint.name == endpoint}
    higher = True if survival else (directions != {"lower_is_better"})
    if len(directions) > 1:
        raise ConfigError(
            [
                Problem(
                    "endpoint.direction",
                    f"the designs read {endpoint!r} in opposite directions",
                    sorted(directions),
                    file=file,
                )
            ]
        )
    return endpoint, control, float(relevant), higher


def predictive_markers(scenario: Scenario) -> list[str]:
    """The characteristics that change some treatment's effect relative to another (the
    default ``yardstick.by``), in population order."""
    used: set[str] = set()
    for t in scenario.treatments.values():
        if t.relative_to is None:
            continue
        for model in t.outcomes.values():
            used.update(model.odds_ratios)
            used.update(model.hazard_ratios)
    order = list(scenario.population.levels())
    return [m for m in order if m in used]


def build(
    scenario: Scenario,
    patients: VirtualPatients,
    treatments: Sequence[str],
    endpoint: str,
    control: str,
    relevant: float,
    higher_is_better: bool = True,
) -> Yardstick:
    """The exact :class:`Yardstick` of ``treatments`` on ``scenario``."""
    pm, out = patients.population, patients.outcomes
    by = list(scenario.yardstick.by) if scenario.yardstick.by is not None else predictive_markers(scenario)
    judged = [t for t in dict.fromkeys(treatments) if t != control]
    relevant_markers = patients._relevant_markers(endpoint, judged + [control])
    codes, prob = pm.distribution(sorted(set(by) | set(relevant_markers)))
    index = tuple(pm.index[m] for m in by)
    levels = list(itertools.product(*[range(len(pm.levels[i])) for i in index]))
    names = [" & ".join(f"{m}={pm.levels[i][lv]}" for m, i, lv in zip(by, index, combo)) or "all" for combo in levels]
    key = codes[:, list(index)].astype(np.int64) if index else np.zeros((codes.shape[0], 0), dtype=np.int64)
    share = np.array([prob[(key == np.array(combo)).all(axis=1)].sum() for combo in levels])
    keep = share > 0
    levels = [lv for lv, k in zip(levels, keep) if k]
    names = [n for n, k in zip(names, keep) if k]
    share = share[keep]
    survival = scenario.endpoints[endpoint].kind == "time_to_event"
    D, Y = len(judged), len(levels)
    value, effect = np.full((D, Y), np.nan), np.full((D, Y), np.nan)
    reference = np.full(Y, np.nan)
    for y, combo in enumerate(levels):
        w = prob * (key == np.array(combo)).all(axis=1)
        reference[y] = out.expected(endpoint, control, codes, w)
        for d, t in enumerate(judged):
            value[d, y] = out.expected(endpoint, t, codes, w)
            effect[d, y] = out.effect(endpoint, t, control, codes, w)
    with np.errstate(invalid="ignore"):
        if survival:
            bound = math.log(relevant)
            works, null = effect <= bound + _TOL, effect >= -_TOL
        else:
            sign = 1.0 if higher_is_better else -1.0
            works, null = sign * effect >= relevant - _TOL, sign * effect <= _TOL
    return Yardstick(
        scenario=scenario.name,
        endpoint=endpoint,
        control=control,
        by=tuple(by),
        subgroups=tuple(names),
        share=share,
        treatments=tuple(judged),
        value=value,
        reference=reference,
        effect=effect,
        works=works,
        null=null,
        relevant=float(relevant),
        survival=survival,
        higher_is_better=higher_is_better,
        levels=tuple(tuple(lv) for lv in levels),
        characteristics=index,
    )


def for_specs(specs: Sequence[Spec]) -> Yardstick:
    """The yardstick of one scenario for the designs of ``specs`` (all on that scenario)."""
    scenario = specs[0].scenario
    endpoint, control, relevant, higher = settle(scenario, [s.design for s in specs], specs[0].scenario_file)
    treatments = [a.treatment for s in specs for a in s.design.arms]
    return build(scenario, specs[0].patients, treatments, endpoint, control, relevant, higher)


# --------------------------------------------------------------------------- one design on the yardstick


@dataclass(frozen=True)
class Reading:
    """How one design's results read on a yardstick.

    ``drug`` (K,): each arm's treatment among the yardstick's (-1: the standard of care);
    ``covers`` (G, R): the design's subgroup g contains true profile r; ``row_subgroup`` (R,): the
    yardstick subgroup of each profile; ``share`` (S, Y): the share of each yardstick subgroup among
    the patients each stratum randomizes; ``needs_assay``: the design needs a biomarker result
    before randomizing."""

    yardstick: Yardstick
    drug: np.ndarray
    covers: np.ndarray
    row_subgroup: np.ndarray
    share: np.ndarray
    needs_assay: bool
    assay_cost: float
    patient_cost: float


def reading(spec: Spec, ys: Yardstick) -> Reading:
    """How ``spec``'s design reads on ``ys``."""
    pm = spec.patients.population
    by = [pm.names[i] for i in ys.characteristics]
    ps = spec.family.profiles(spec.compiled, by)
    truth = spec.truth
    covers = np.zeros((len(truth.subgroups), ps.codes.shape[0]), dtype=bool)
    for g in range(len(truth.subgroups)):
        covers[g] = ps.member[:, truth.membership[g]].any(axis=1)
    row_subgroup = ys.subgroup_of(ps.codes)
    Y = len(ys.subgroups)
    onehot = np.zeros((ps.codes.shape[0], Y))
    onehot[np.arange(ps.codes.shape[0]), row_subgroup] = 1.0
    taken = ps.weights.sum(axis=0)
    share = (ps.weights.T @ onehot) / np.where(taken > 0, taken, 1.0)[:, None]
    drug = np.array(
        [ys.treatments.index(a.treatment) if a.treatment in ys.treatments else -1 for a in spec.design.arms],
        dtype=np.int64,
    )
    costs = spec.scenario.costs
    needs = bool(spec.compiled.needs_biomarker_result)
    return Reading(
        ys,
        drug,
        covers,
        row_subgroup,
        share,
        needs,
        float(costs.assay_per_patient),
        float(costs.per_randomized_patient),
    )


def cell_times(results: TrialResults, r: Reading) -> np.ndarray:
    """(T, D, Y) months from the opening to each treatment's first claim that reaches each
    yardstick subgroup (inf: never)."""
    claimed = np.asarray(results.claimed, dtype=bool)
    month = np.where(
        np.isnan(results.claim_month),
        np.asarray(results.duration_months, dtype=float)[:, None, None],
        results.claim_month,
    )
    month = np.where(claimed, month, np.inf)  # (T, K, G)
    T, K, G = month.shape
    ys = r.yardstick
    D, Y = len(ys.treatments), len(ys.subgroups)
    cell = np.full((T, K, Y), np.inf)
    for y in range(Y):
        reaches = r.covers[:, r.row_subgroup == y].any(axis=1)  # (G,) the design's subgroups with patients of y
        if reaches.any():
            cell[:, :, y] = month[:, :, reaches].min(axis=2)
    out = np.full((T, D, Y), np.inf)
    for k in range(K):
        d = r.drug[k]
        if d >= 0:
            out[:, d] = np.minimum(out[:, d], cell[:, k])
    return out


def values(results: TrialResults, r: Reading) -> dict[tuple[str, str, str, str], np.ndarray]:
    """Per-trial values (T,) of the yardstick, keyed (level, treatment, subgroup, metric) with
    level ``trial``, ``drug`` or ``subgroup`` (see :data:`TRIAL_METRICS`, :data:`DRUG_METRICS`,
    :data:`CELL_METRICS`)."""
    ys = r.yardstick
    T = results.n_trials
    nan = np.full(T, np.nan)
    times = cell_times(results, r)
    claimed = np.isfinite(times)  # (T, D, Y)
    works, null = ys.works[None], ys.null[None]
    true_claim, false_claim = claimed & works, claimed & null
    n = np.asarray(results.n, dtype=float)  # (T, K, S)
    n_ky = np.einsum("tks,sy->tky", n, r.share)
    n_dy = np.zeros((T, len(ys.treatments), len(ys.subgroups)))
    n_control = np.zeros(T)
    for k, d in enumerate(r.drug):
        if d >= 0:
            n_dy[:, d] += n_ky[:, k]
        else:
            n_control += n_ky[:, k].sum(axis=1)
    randomized = n.sum(axis=(1, 2))
    screened = np.asarray(results.n_screened, dtype=float)
    assayed = screened if r.needs_assay else np.zeros(T)
    first_true = np.where(true_claim, times, np.inf).min(axis=(1, 2))
    out: dict[tuple[str, str, str, str], np.ndarray] = {}

    def put(metric, x, level="trial", drug="", subgroup=""):
        out[level, drug, subgroup, metric] = np.asarray(x, dtype=float)

    put("fwer", false_claim.any(axis=(1, 2)) if ys.null.any() else nan)
    put("power", true_claim.any(axis=(1, 2)) if ys.works.any() else nan)
    put("p_correct_finding", ~false_claim.any(axis=(1, 2)) & ~(works & ~claimed).any(axis=(1, 2)))
    put("p_any_claim", claimed.any(axis=(1, 2)))
    put("n_screened", screened)
    put("n_randomized", randomized)
    put("n_assayed", assayed)
    put("n_on_effective", (n_dy * ys.works[None]).sum(axis=(1, 2)))
    put("n_on_ineffective", (n_dy * ys.null[None]).sum(axis=(1, 2)))
    put("n_on_control", n_control)
    if not ys.survival:
        responders = (n_dy * ys.value[None]).sum(axis=(1, 2))
        for k, d in enumerate(r.drug):
            if d < 0:
                responders = responders + (n_ky[:, k] * ys.reference[None]).sum(axis=1)
        put("expected_responders", responders)
    put("months_to_first_true_claim", np.where(np.isfinite(first_true), first_true, np.nan))
    put("duration_months", np.asarray(results.duration_months, dtype=float))
    put("cost", assayed * r.assay_cost + randomized * r.patient_cost)
    for d, t in enumerate(ys.treatments):
        put("power", true_claim[:, d].any(axis=1) if ys.works[d].any() else nan, "drug", t)
        put("p_false_claim", false_claim[:, d].any(axis=1) if ys.null[d].any() else nan, "drug", t)
        put("p_claimed", claimed[:, d].any(axis=1), "drug", t)
        for y, sub in enumerate(ys.subgroups):
            put("p_claimed", claimed[:, d, y], "subgroup", t, sub)
            put("n", n_dy[:, d, y], "subgroup", t, sub)
    return out


def check_null(ys: Yardstick, file: str | None = None) -> None:
    """Raise a :class:`ConfigError` unless every treatment is null in every subgroup of ``ys``."""
    bad = [
        f"{t} in {s} ({ys.effect_scale} {ys.effect[d, y]:+.3f})"
        for d, t in enumerate(ys.treatments)
        for y, s in enumerate(ys.subgroups)
        if not ys.null[d, y]
    ]
    if bad:
        raise ConfigError(
            [
                Problem(
                    "null_scenario",
                    f"{ys.scenario!r} is not a global null: some treatments are better "
                    f"than {ys.control} ({'; '.join(bad)}), so a claim there is not a false positive",
                    ys.scenario,
                    file=file,
                )
            ]
        )


__all__ = [
    "CELL_METRICS",
    "DRUG_METRICS",
    "TRIAL_METRICS",
    "Reading",
    "Yardstick",
    "build",
    "cell_times",
    "check_null",
    "for_specs",
    "predictive_markers",
    "reading",
    "settle",
    "values",
]
