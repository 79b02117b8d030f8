"""Property-based tests (hypothesis) of engine invariants over random *valid* designs and scenarios.

Designs and scenarios are built from the shipped YAML files (``designs/*.yaml``,
``scenarios/*.yaml``): a file is loaded as a dict, hypothesis draws valid modifications
(number of arms and their treatments, true rates, look schedule and maximum size,
thresholds, randomization and allocation limits, control allocation, caps, strata and
sub-study settings, platform triggers and graduation), and the result goes through every
check a file goes through (:func:`platform_sim.config.load.parse_design` /
``parse_scenario`` and :meth:`platform_sim.spec.Spec.from_models`). A batch of 1-30
trials is then simulated with :func:`platform_sim.runner.run_chunk`.

The properties:

1. allocation probabilities are finite, non-negative, zero on arms that cannot take
   patients and sum to 1 (every allocation the engines compute, the ``alloc_history`` extra,
   the allocation behind the ``final_alloc`` extra, and the allocation functions called directly on
   random posteriors), and respect the allocation limits where the limits can be met;
2. no arm exceeds its cap (``max_n``), and no stratum its cap (``groups[].max_n`` or its
   last stage);
3. sample sizes never exceed the design's maximum (``n_randomized <= looks.randomized_n`` of
   the last look conducted, hence of the last look) and follow-up never exceeds
   randomization;
4. posterior probabilities are finite and within [0, 1] for extreme data (no events,
   only events, up to 10^5 patients per arm, small and large priors): P(best),
   P(better than control), P(|difference| < margin), P(max - min < margin), beta
   quantiles, gamma posteriors of hazards (P(HR < h), intervals, median PFS),
   predictive probabilities, and the hierarchical model across strata;
5. P(best) over the arms still in the trial sums to 1 (in the ``prob_best`` extra, NaN
   exactly for dropped arms, and in the posterior function directly).

Every test is deterministic (``derandomize=True``, no example database).
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from platform_sim.allocation import allocation_probabilities, block_counts, deal, draw_arms
from platform_sim.config.load import parse_design, parse_scenario
from platform_sim.config.population import expected_randomizable
from platform_sim.families import looks as engine
from platform_sim.families import platform as timeline
from platform_sim.families import stratified
from platform_sim.posterior import (
    beta_interval,
    prob_all_within,
    prob_best,
    prob_best_and_vs_control,
    prob_greater,
    prob_within,
)
from platform_sim.posterior.hierarchical import (
    HierarchicalPrior,
    hierarchical_posterior,
    prob_stratum_above,
    stratum_mean,
)
from platform_sim.posterior.hierarchical_fast import (
    engine_grid,
    hierarchical_beta_approx,
    hierarchical_moments,
)
from platform_sim.posterior.predictive import pp_confirmatory, pp_single_arm, pp_two_arm
from platform_sim.posterior.survival import (
    gamma_posterior,
    hazard_interval,
    log_hr_moments,
    median_pfs,
    pp_confirmatory_survival,
    prob_hr_below,
)
from platform_sim.results import EQUIVALENT, FUTILE, INELIGIBLE, INFERIOR, TrialResults
from platform_sim.runner import run_chunk
from platform_sim.spec import Spec
from platform_sim.streams import Streams

ROOT = Path(__file__).resolve().parents[1]
F32 = 2.0**-24  # alloc_history is stored as float32
TOL = 1e-9  # sums of float64 probabilities
DROPPED = (INFERIOR, FUTILE, EQUIVALENT)


def _settings(n: int):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# =========================================================================== building cases


@functools.cache
def _shipped_text(kind: str, name: str) -> str:
    return (ROOT / f"{kind}s" / f"{name}.yaml").read_text()


def shipped(kind: str, name: str) -> dict:
    """A fresh dict of the shipped design or scenario ``name``."""
    return yaml.safe_load(_shipped_text(kind, name))


@dataclass
class Case:
    """A design and a scenario (dicts, as read from YAML and modified), and what to simulate."""

    design: dict
    scenario: dict
    scenario_name: str
    seed: int
    n_trials: int

    def spec(self) -> Spec:
        """The Spec after every check a file goes through (a ConfigError here is a generator bug)."""
        scenario_file = str(ROOT / "scenarios" / f"{self.scenario_name}.yaml")
        return Spec.from_models(
            parse_design(copy.deepcopy(self.design), f"<{self.design['name']}>"),
            parse_scenario(copy.deepcopy(self.scenario), scenario_file),
            None,
            scenario_file,
        )


PIONEER_SCENARIOS = [
    "pioneer_null",
    "pioneer_alternative",
    "trop2_adc",
    "stk11_keap1_ctla4",
    "atm_ceralasertib",
    "phase2_optimism",
    "s1800a_allcomer",
    "qualitative_interaction",
    "control_drift",
]
# Docetaxel's reference median PFS (months): near 0 makes 12-week disease control ~0 for every arm,
# a very long one (1,200 months, the longest a scenario may give) makes it ~1 (no events / only
# events); None keeps the shipped value.
EXTREME_MEDIANS = [None, None, 0.02, 0.5, 5.63, 60.0, 1200.0]


def unit_floats(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def pioneer_scenarios(draw):
    """A shipped PIONeeR-like scenario, with docetaxel's baseline and the experimental treatments'
    effects optionally redrawn (hazard ratios from 0.05 to 20, response odds ratios, extreme rates)."""
    name = draw(st.sampled_from(PIONEER_SCENARIOS))
    sc = shipped("scenario", name)
    doc = sc["treatments"]["docetaxel"]["outcomes"]
    median = draw(st.sampled_from(EXTREME_MEDIANS))
    if median is not None:
        doc["pfs"]["median_months"] = median
    rate = draw(st.sampled_from([None, None, 0.0, 0.01, 0.5, 0.99, 1.0]))
    if rate is not None:
        doc["orr"]["rate"] = rate
    for t in sorted(sc["treatments"]):
        if t == "docetaxel" or not draw(st.booleans()):
            continue
        outcomes = sc["treatments"][t].setdefault("outcomes", {})
        outcomes.setdefault("pfs", {})["hazard_ratio"] = draw(st.sampled_from([0.05, 0.3, 0.7, 1.0, 1.5, 4.0, 20.0]))
        outcomes.setdefault("orr", {})["odds_ratio"] = draw(st.sampled_from([0.01, 0.5, 1.0, 2.0, 100.0]))
    return sc, name


@st.composite
def binary_scenarios(draw):
    """The benchmark scenario (a binary 'event' endpoint, treatments A-D) with every true rate
    redrawn, 0 and 1 included."""
    sc = shipped("scenario", "benchmark_four_arm")
    for t in sc["treatments"].values():
        t["rates"]["event"] = draw(st.one_of(st.sampled_from([0.0, 1.0, 0.5]), unit_floats(0.0, 1.0)))
    return sc, "benchmark_four_arm"


@st.composite
def look_schedules(draw, max_looks: int = 5, max_step: int = 80):
    """``looks``: strictly increasing randomized_n and, optionally, followed_n <= randomized_n."""
    n_looks = draw(st.integers(1, max_looks))
    steps = draw(st.lists(st.integers(1, max_step), min_size=n_looks, max_size=n_looks))
    randomized = [int(x) for x in np.cumsum(steps)]
    looks = {"randomized_n": randomized}
    if draw(st.booleans()):
        lags = draw(st.lists(st.integers(0, 60), min_size=n_looks, max_size=n_looks))
        followed, prev = [], 0
        for r, lag in zip(randomized, lags):
            prev = max(prev + 1, r - lag)  # <= r since r > the previous randomized_n >= the previous followed_n
            followed.append(prev)
        looks["followed_n"] = followed
    return looks


def prior_dicts():
    """Beta priors a design may give: shapes from 1/2 (the smallest the configuration accepts) to 20."""
    return st.fixed_dictionaries({"a": unit_floats(0.5, 20.0), "b": unit_floats(0.5, 20.0)})


@st.composite
def control_allocations(draw, n_arms: int):
    """A control_allocation section (or None) and the largest control share it can give, as the
    design checks compute it."""
    rule = draw(st.sampled_from([None, "fixed", "fixed_table", "sqrt_k", "match_best"]))
    if rule is None:
        return None, 0.0
    if rule == "fixed":
        share = draw(unit_floats(0.05, 0.9))
        return {"rule": "fixed", "share": share}, share
    if rule == "fixed_table":
        table = {k: draw(unit_floats(0.05, 0.9)) for k in range(1, n_arms)}
        return {"rule": "fixed", "share": table}, max(table.values())
    if rule == "sqrt_k":
        k = n_arms - 1
        return {"rule": "sqrt_k"}, math.sqrt(k) / (math.sqrt(k) + k)
    return {"rule": "match_best"}, 0.0


@st.composite
def randomizations(draw, names, adaptive_arms, fixed_share, n_looks, max_n, platform=False, method=None):
    """A valid randomization section: fixed (optional ratios) or adaptive (softening, burn-in,
    min/max allocation as one number or per arm, rescaling)."""
    method = method or draw(st.sampled_from(["adaptive", "fixed"]))
    rnd = {"method": method, "scheme": "simple" if platform else draw(st.sampled_from(["simple", "block"]))}
    if draw(st.booleans()):
        rnd["ratios"] = {a: draw(unit_floats(0.1, 5.0)) for a in names}
    if method == "fixed":
        return rnd
    soft = [unit_floats(0.0, 2.0)]
    if not platform:
        soft += [st.just("thall_wathen"), st.lists(unit_floats(0.0, 2.0), min_size=n_looks, max_size=n_looks)]
    rnd["softening"] = draw(st.one_of(*soft))
    rnd["burn_in_n"] = draw(st.one_of(st.just(0), st.integers(0, max(max_n - 1, 0))))
    rnd["rescale_limits"] = draw(st.booleans())
    room = max(1.0 - fixed_share, 0.0)
    m = len(adaptive_arms)
    fraction = st.one_of(st.sampled_from([0.0, 0.8, 1.0]), unit_floats(0.0, 1.0))  # 1: the tightest limit
    mins: dict[str, float] = {}
    kind = draw(st.sampled_from(["scalar", "per_arm", "none"]))
    if kind == "scalar":
        value = draw(fraction) * room / m
        rnd["min_allocation"] = value
        mins = dict.fromkeys(adaptive_arms, value)
    elif kind == "per_arm":
        chosen = draw(st.lists(st.sampled_from(adaptive_arms), min_size=1, unique=True))
        mins = {a: draw(fraction) * room / m for a in chosen}
        rnd["min_allocation"] = mins
    kind = draw(st.sampled_from(["scalar", "per_arm", "none"]))
    if kind == "scalar":
        low = max([room / m] + list(mins.values()))
        rnd["max_allocation"] = min(1.0, low + (1.0 - draw(fraction)) * (1.0 - low))
    elif kind == "per_arm":
        chosen = draw(st.lists(st.sampled_from(adaptive_arms), min_size=1, unique=True))
        maxs = {}
        for a in chosen:
            low = mins.get(a, 0.0)
            maxs[a] = min(1.0, low + (1.0 - draw(fraction)) * (1.0 - low))
        if len(maxs) == m and sum(maxs.values()) < room:
            maxs[chosen[0]] = 1.0  # the maxima must leave room for the whole allocation
        rnd["max_allocation"] = maxs
    return rnd


@st.composite
def thresholds(draw, n_looks: int, n_arms: int, has_control: bool, scalar_only: bool = False):
    """superiority / inferiority (None, one number or one per look) with inferiority below
    superiority, P(best) thresholds on either side of 1/K without a control."""
    lo = 0.5 if has_control else 1.0 / n_arms

    def values(low, high, allow_list=True):
        forms = [st.none(), unit_floats(low, high)]
        if allow_list and not scalar_only:
            forms.append(st.lists(unit_floats(low, high), min_size=n_looks, max_size=n_looks))
        return draw(st.one_of(*forms))

    sup = values(lo + 1e-3, 0.9999)
    per_look = sup if isinstance(sup, list) else [sup if sup is not None else 1.0] * n_looks
    bound = [min(s, 1.0 if has_control else 1.0 / n_arms) for s in per_look]
    form = draw(st.sampled_from(["none", "scalar"] if scalar_only else ["none", "scalar", "list"]))
    if form == "none":
        inf = None
    elif form == "scalar":
        inf = draw(unit_floats(0.001, 0.999)) * min(bound)
    else:
        inf = [draw(unit_floats(0.001, 0.999)) * b for b in bound]
    return sup, inf


@st.composite
def decisions(draw, n_looks, n_arms, has_control, scalar_only=False):
    sup, inf = draw(thresholds(n_looks, n_arms, has_control, scalar_only))
    dec = {"superiority": sup, "inferiority": inf}
    if has_control and draw(st.booleans()):
        dec["futility"] = {
            "threshold": draw(unit_floats(0.01, 0.99)),
            "delta": draw(unit_floats(0.0, 0.3)),
            "only_first_control": draw(st.booleans()),
        }
    if draw(st.booleans()):
        dec["equivalence"] = {
            "probability": draw(unit_floats(0.5, 0.99)),
            "margin": draw(unit_floats(0.005, 0.3)),
            "only_first_control": draw(st.booleans()),
        }
    if sup is None and inf is None and "futility" not in dec and "equivalence" not in dec:
        dec["superiority"] = 0.99  # some rule must be enabled
    return dec


LOOK_BASES = ["benchmark_four_arm", "pioneer_rar", "allcomer_rar", "allcomer_fixed"]


@st.composite
def look_cases(draw, max_trials: int = 30):
    """A design with looks and no strata (the looks family), built from a shipped design."""
    base = draw(st.sampled_from(LOOK_BASES))
    d = shipped("design", base)
    if base == "benchmark_four_arm":
        sc, sname = draw(binary_scenarios())
    else:
        sc, sname = draw(pioneer_scenarios())
        d["endpoint"]["name"] = draw(st.sampled_from(["dcr12", "orr"]))
    d["endpoint"]["direction"] = draw(st.sampled_from(["higher_is_better", "lower_is_better"]))
    # arms: 2 to 6, each on one of the scenario's treatments (the base's arms kept when drawn)
    treatments = sorted(sc["treatments"])
    if draw(st.booleans()):
        arms = [{"name": a["name"], "treatment": a["treatment"]} for a in d["arms"]]
    else:
        n_arms = draw(st.integers(2, 6))
        picks = draw(st.lists(st.sampled_from(treatments), min_size=n_arms, max_size=n_arms))
        arms = [{"name": f"arm{i}_{t}", "treatment": t} for i, t in enumerate(picks)]
    names = [a["name"] for a in arms]
    k = len(arms)
    d["arms"] = arms
    has_control = draw(st.booleans())
    d.pop("control", None)
    d.pop("control_allocation", None)
    ca, fixed_share = None, 0.0
    if has_control:
        d["control"] = names[draw(st.integers(0, k - 1))]
        ca, fixed_share = draw(control_allocations(k))
        if ca is not None:
            d["control_allocation"] = ca
    looks = draw(look_schedules())
    d["looks"] = looks
    max_n = looks["randomized_n"][-1]
    n_looks = len(looks["randomized_n"])
    if draw(st.booleans()):
        d["prior"] = draw(prior_dicts())
    for a in arms:
        if draw(st.integers(0, 3)) == 0:
            a["prior"] = draw(prior_dicts())
        if draw(st.integers(0, 2)) == 0:
            a["max_n"] = draw(st.integers(1, max_n))
    if all("max_n" in a for a in arms) and sum(a["max_n"] for a in arms) < max_n:
        del arms[-1]["max_n"]  # the caps must leave room for the last look
    adaptive_arms = [a for a in names if not (ca is not None and a == d.get("control"))]
    d["randomization"] = draw(randomizations(names, adaptive_arms, fixed_share, n_looks, max_n))
    d["decisions"] = draw(decisions(n_looks, k, has_control))
    return Case(d, sc, sname, draw(st.integers(0, 2**32 - 1)), draw(st.integers(1, max_trials)))


STRATIFIED_BASES = ["battle_stratified_rar", "lungmap_umbrella", "hierarchical_borrowing", "adaptive_enrichment"]


@st.composite
def stratified_cases(draw, max_trials: int = 20):
    """A stratified design (sub-studies or strata by markers), built from a shipped design."""
    base = draw(st.sampled_from(STRATIFIED_BASES))
    d = shipped("design", base)
    sc, sname = draw(pioneer_scenarios())
    d["endpoint"]["name"] = draw(st.sampled_from(["dcr12", "orr"]))
    d["endpoint"]["direction"] = draw(st.sampled_from(["higher_is_better", "lower_is_better"]))
    names = [a["name"] for a in d["arms"]]
    control = d["control"]
    others = [a for a in names if a != control]
    looks = draw(look_schedules(max_looks=4, max_step=70))
    d["looks"] = looks
    max_n = looks["randomized_n"][-1]
    n_looks = len(looks["randomized_n"])
    strata = d["strata"]
    staged = False
    if base == "battle_stratified_rar":
        strata["overlap"] = draw(st.sampled_from(["priority", "random"]))
        for g in strata["groups"]:
            g["arms"] = [control] + draw(st.lists(st.sampled_from(others), min_size=1, unique=True))
            if draw(st.booleans()):
                g["max_n"] = draw(st.integers(1, max_n))
        used = {a for g in strata["groups"] for a in g["arms"]}
        d["arms"] = [a for a in d["arms"] if a["name"] in used]
        if draw(st.booleans()):
            strata["suspension"] = {"reference": draw(unit_floats(0.0, 1.0)), "below": draw(unit_floats(0.01, 0.99))}
        else:
            strata.pop("suspension", None)
    elif base == "lungmap_umbrella":
        strata["overlap"] = draw(st.sampled_from(["priority", "random"]))
        for g in strata["groups"][:-1]:
            if draw(st.booleans()):
                g["max_n"] = draw(st.integers(1, max_n))
            else:
                g.pop("max_n", None)
        other = strata["groups"][-1]
        stages = sorted(draw(st.lists(st.integers(1, max_n), min_size=1, max_size=3, unique=True)))
        other["looks"] = stages
        other["reference_rate"] = draw(unit_floats(0.0, 1.0))
        if draw(st.booleans()) and d["endpoint"]["direction"] == "higher_is_better":
            other["responder_boundaries"] = [draw(st.integers(0, s - 1)) for s in stages]
        staged = True
    elif base == "hierarchical_borrowing":
        strata["borrowing"] = {
            "mu_a": draw(unit_floats(0.2, 5.0)),
            "mu_b": draw(unit_floats(0.2, 5.0)),
            "log_kappa_mean": draw(unit_floats(-1.0, 5.0)),
            "log_kappa_sd": draw(unit_floats(0.3, 3.0)),
        }
    else:
        strata["enrichment"].update(
            futility=draw(unit_floats(0.01, 0.99)),
            delta=draw(unit_floats(0.0, 0.3)),
            promising=draw(unit_floats(0.01, 0.99)),
        )
    names = [a["name"] for a in d["arms"]]
    ca, fixed_share = draw(control_allocations(len(names)))
    if ca is None:
        d.pop("control_allocation", None)
    else:
        d["control_allocation"] = ca
    adaptive_arms = [a for a in names if not (ca is not None and a == control)]
    d["randomization"] = draw(randomizations(names, adaptive_arms, fixed_share, n_looks, max_n))
    d["decisions"] = draw(decisions(n_looks, len(names), True, scalar_only=staged))
    if draw(st.booleans()):
        d["prior"] = draw(prior_dicts())
    return Case(d, sc, sname, draw(st.integers(0, 2**32 - 1)), draw(st.integers(1, max_trials)))


@st.composite
def platform_cases(draw, max_trials: int = 12):
    """A platform over calendar time, built from pioneer_platform: arms, caps, entry dates, open
    slots, triggers, graduation, randomization, endpoint and strata redrawn."""
    d = shipped("design", "pioneer_platform")
    sc, sname = draw(pioneer_scenarios())
    pf = d["platform"]
    control = d["control"]
    experimental = [a for a in d["arms"] if a["name"] != control]
    chosen = draw(st.lists(st.sampled_from(range(len(experimental))), min_size=1, unique=True))
    d["arms"] = [d["arms"][0]] + [experimental[i] for i in sorted(chosen)]
    duration = draw(unit_floats(6.0, 24.0))
    pf["max_duration_months"] = duration
    endpoint = draw(st.sampled_from(["pfs", "dcr12", "orr"]))
    d["endpoint"]["name"] = endpoint
    if endpoint != "pfs":
        pf.pop("hazard_prior")
        d["prior"] = draw(prior_dicts())
    else:
        pf["hazard_prior"] = {"shape": draw(unit_floats(0.1, 10.0)), "rate": draw(unit_floats(0.1, 40.0))}
    pf["assessment_weeks"] = draw(unit_floats(2.0, 8.0))
    pf["follow_up_months"] = draw(unit_floats(3.0, 8.0))  # >= one assessment and >= 12 weeks (dcr12)
    pf["max_open_arms"] = draw(st.one_of(st.none(), st.integers(1, 4)))
    pf["controls"] = draw(st.sampled_from(["concurrent", "all"]))
    for a in d["arms"][1:]:
        a["max_n"] = draw(st.one_of(st.none(), st.integers(1, 150)))
        a["enter_months"] = draw(st.one_of(st.none(), unit_floats(0.0, duration * 0.9)))
    # strata: none, or one marker that is not prognostic for PFS (cheap exact truth per stratum)
    marker = draw(st.sampled_from([None, "atm", "trop2_nmr"]))
    g = pf["graduation"]
    g.pop("signatures")
    if marker is None:
        d.pop("strata")
    else:
        d["strata"] = {"by": [marker]}
        if draw(st.booleans()):
            g["signatures"] = {"all": [f"{marker}=negative", f"{marker}=positive"], "pos": [f"{marker}=positive"]}
    expected = (
        expected_randomizable(
            parse_scenario(copy.deepcopy(sc), str(ROOT / "scenarios" / f"{sname}.yaml")).population, duration
        )
        * 0.5
    )
    trigger = draw(st.sampled_from(["every_months", "every_enrolled", "every_observed"]))
    if trigger == "every_months":
        it = {"every_months": draw(unit_floats(0.5, 6.0))}
        if draw(st.booleans()):
            it["first_months"] = draw(unit_floats(0.5, duration))
    else:
        it = {trigger: draw(st.integers(1, max(1, int(expected))))}
    it["min_new_outcomes"] = draw(st.integers(0, max(0, min(20, int(expected)))))
    pf["interims"] = it
    g["by"] = draw(st.sampled_from(["predictive", "posterior"]))
    g["graduate"] = draw(unit_floats(0.5, 0.99))
    g["drop"] = draw(st.one_of(st.none(), unit_floats(0.01, 0.49)))
    g["confirmatory_n"] = draw(st.integers(2, 300))
    g["confirmatory_events"] = draw(st.integers(1, 300))
    caps = [a["max_n"] for a in d["arms"][1:] if a["max_n"] is not None]
    g["min_n"] = draw(st.integers(0, min(caps + [40])))
    names = [a["name"] for a in d["arms"]]
    method = draw(st.sampled_from(["fixed", "adaptive"]))
    ca, fixed_share = draw(control_allocations(len(names)))
    if method == "adaptive" and ca is None:
        ca, fixed_share = {"rule": "sqrt_k"}, math.sqrt(len(names) - 1) / (math.sqrt(len(names) - 1) + len(names) - 1)
    if ca is None:
        d.pop("control_allocation")
    else:
        d["control_allocation"] = ca
    adaptive_arms = [a for a in names if not (ca is not None and a == control)]
    d["randomization"] = draw(randomizations(names, adaptive_arms, fixed_share, 1, 60, platform=True, method=method))
    return Case(d, sc, sname, draw(st.integers(0, 2**32 - 1)), draw(st.integers(1, max_trials)))


# =========================================================================== recording allocations


class Recorder:
    """Wraps an allocation function and keeps (arguments, result) of every call."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = []

    def __call__(self, *args, **kwargs):
        out = self.fn(*args, **kwargs)
        self.calls.append((args, kwargs, np.array(out)))
        return out


def assert_allocation_rows(probs, open_, what, tol=TOL):
    """Property 1 for rows of allocation probabilities: finite, >= 0, 0 where an arm cannot take
    patients, and summing to 1 (to 0 when no arm can)."""
    probs = np.asarray(probs, dtype=float)
    open_ = np.asarray(open_, dtype=bool)
    assert np.isfinite(probs).all(), f"{what}: non-finite allocation {probs[~np.isfinite(probs).all(axis=-1)]}"
    assert (probs >= 0).all(), f"{what}: negative allocation {probs.min()}"
    assert (probs[~open_] == 0).all(), f"{what}: allocation to an arm that cannot take patients"
    sums = probs.sum(axis=-1)
    expected = open_.any(axis=-1).astype(float)
    bad = np.abs(sums - expected) > tol
    assert not bad.any(), f"{what}: rows sum to {sums[bad][:5]}, expected {expected[bad][:5]}"


def check_limits(design, adaptive: bool, in_trial, open_, control, probs, what) -> None:
    """Property 1, allocation limits: with adaptive allocation and min/max allocation (scaled by
    initial / active arms with ``rescale_limits``), every arm other than a control with its own share
    gets between its limits, in every row whose limits can be met by the share left after the
    control (the limits of the other rows are relaxed, as documented)."""
    if not (adaptive and design.has_limits):
        return
    probs, in_trial, open_ = (np.asarray(v) for v in (probs, in_trial, open_))
    rows, k = probs.shape
    factor = k / np.maximum(in_trial.sum(axis=1, keepdims=True), 1) if design.rescale_limits else np.ones((rows, 1))
    lower = np.minimum(design.min_allocation * factor, 1.0)
    upper = np.minimum(design.max_allocation * factor, 1.0)
    is_ctrl = np.zeros((rows, k), dtype=bool)
    if design.control_rule is not None:
        is_ctrl[np.arange(rows), np.asarray(control)] = True
    others = open_ & ~is_ctrl
    budget = np.where(others, probs, 0.0).sum(axis=1)  # what is left after the control's share
    feasible = (np.where(others, lower, 0).sum(axis=1) <= budget + 1e-12) & (
        np.where(others, upper, 0).sum(axis=1) >= budget - 1e-12
    )
    check = others & feasible[:, None]
    low = check & (probs < lower - 1e-9)
    high = check & (probs > upper + 1e-9)
    assert not low.any(), f"{what}: allocation {probs[low.any(axis=1)]} below min_allocation {lower[low.any(axis=1)]}"
    assert not high.any(), (
        f"{what}: allocation {probs[high.any(axis=1)]} above max_allocation {upper[high.any(axis=1)]}"
    )


def check_recorded_allocations(calls, what) -> None:
    """Property 1 on every (arguments, result) of ``allocation_probabilities`` an engine made."""
    assert calls, f"{what}: no allocation was computed"
    for args, _, out in calls:
        design, look, pb, in_trial, open_, control = args
        assert_allocation_rows(out, open_, what)
        adaptive = design.adaptive and look >= 0 and design.followed_n[look] >= design.burn_in_n and pb is not None
        check_limits(design, adaptive, in_trial, open_, control, out, what)


# =========================================================================== checks of results


def check_prob_best(res: TrialResults, still_in: np.ndarray, what: str) -> None:
    """Property 5 on the ``prob_best`` extra: NaN exactly for dropped arms, in [0, 1] otherwise,
    and summing to 1 over the arms still in the trial (a trial always keeps one)."""
    pb = np.asarray(res.extras["prob_best"], dtype=float)
    assert pb.shape == (res.n_trials, res.n_arms) and res.extra_dims["prob_best"] == ("trial", "arm")
    assert (np.isnan(pb) == ~still_in).all(), f"{what}: P(best) NaN pattern {np.isnan(pb)} vs arms in {still_in}"
    kept = pb[still_in]
    assert np.isfinite(kept).all() and (kept >= 0).all() and (kept <= 1).all(), f"{what}: P(best) {kept}"
    assert still_in.any(axis=1).all(), f"{what}: a trial with every arm dropped"
    sums = np.nansum(pb, axis=1)
    assert np.allclose(sums, 1.0, rtol=0, atol=1e-9), f"{what}: P(best) over the arms still in sums to {sums}"


def pooled_rate(res: TrialResults) -> np.ndarray:
    """(T, K) each arm's final posterior mean rate over all its patients: the ``rate`` estimate of a
    design without strata, the ``pooled_rate`` extra of a stratified one."""
    if "pooled_rate" in res.extras:
        return res.extras["pooled_rate"]
    assert res.strata == ("all",)
    return res.estimates["rate"][:, :, 0]


def check_final_estimates(res: TrialResults, what: str) -> None:
    """Posterior means and 95% intervals of the final analysis (over each arm's patients): finite,
    in [0, 1], ordered, the mean inside its interval."""
    values = {
        "post_mean": pooled_rate(res),
        "post_lower": res.extras["post_lower"],
        "post_upper": res.extras["post_upper"],
    }
    for name, v in values.items():
        v = np.asarray(v)
        assert v.shape == (res.n_trials, res.n_arms), f"{what}: {name} shape {v.shape}"
        assert np.isfinite(v).all() and (v >= 0).all() and (v <= 1).all(), f"{what}: {name} {v}"
    assert (values["post_lower"] <= values["post_upper"]).all(), f"{what}: credible interval upside down"
    assert ((values["post_lower"] <= values["post_mean"]) & (values["post_mean"] <= values["post_upper"])).all(), (
        f"{what}: posterior mean outside its 95% interval"
    )


def check_counts(res: TrialResults, max_n_at_stop: np.ndarray, max_n: int, what: str) -> None:
    """Property 3: randomized patients within the design's maximum (and the stopping look's size);
    events (per arm x stratum) and followed patients within the randomized."""
    n_randomized = res.n_randomized
    assert (res.n >= 0).all() and (res.events >= 0).all()
    assert (res.events <= res.n).all(), f"{what}: more events than patients"
    if "n_followed" in res.extras:  # designs with looks: patients with an outcome at the last look
        assert (res.extras["n_followed"] <= res.n_by_arm).all(), f"{what}: more followed than randomized"
    assert (n_randomized <= max_n_at_stop).all(), (
        f"{what}: n_randomized {n_randomized} above the stopping look's {max_n_at_stop}"
    )
    assert (n_randomized <= max_n).all(), (
        f"{what}: n_randomized {n_randomized.max()} above the design's maximum {max_n}"
    )


# =========================================================================== 1-5 on simulated trials


def _lungmap_all_inferior() -> Case:
    """Regression (stratified pooled view): Lung-MAP-like sub-studies without futility whose
    experimental arms are all far worse than docetaxel. Each matched sub-study drops its arm as
    inferior, which leaves docetaxel the lone (SUPERIOR, undeclared) arm of every sub-study; the
    pooled view used to call docetaxel INFERIOR, so every arm's final P(best) was NaN."""
    d = shipped("design", "lungmap_umbrella")
    del d["decisions"]["futility"]
    sc = shipped("scenario", "pioneer_null")
    for t in ("durva_ceralasertib", "durva_tremelimumab", "dato_dxd", "ramucirumab_pembrolizumab"):
        sc["treatments"][t]["outcomes"] = {"pfs": {"hazard_ratio": 4.0}}
    return Case(d, sc, "pioneer_null", 1, 20)


@_settings(30)
@given(case=look_cases())
def test_engine_invariants(case: Case):
    """Designs with looks and no strata: every allocation the engine computes is a probability
    vector over the arms that can take patients, within the allocation limits wherever they can be
    met (1); the rows of ``alloc_history`` are defined
    exactly for the looks after which a trial went on, sum to 1 and give nothing to dropped arms,
    and ``final_alloc`` is the last allocation used (a probability vector) where it is positive (1);
    no arm exceeds its cap (2); no trial exceeds its maximum (3); final estimates are finite
    probabilities (4); P(best) is NaN exactly for dropped arms and sums to 1 over the rest (5)."""
    event(f"{case.design['name']}, {case.design['endpoint']['name']}, {case.scenario_name}")
    spec = case.spec()
    assert spec.family.name == "looks"
    cd = spec.compiled.rules
    rec = Recorder(allocation_probabilities)
    with mock.patch.object(engine, "allocation_probabilities", rec):
        res = run_chunk(spec, Streams(case.seed).for_trials(np.arange(case.n_trials)))
    t, k, j = case.n_trials, cd.n_arms, cd.n_looks
    what = f"{case.design['name']} x {case.scenario_name}"
    ex = res.extras

    # (1) every allocation computed
    check_recorded_allocations(rec.calls, what)
    # (1) alloc_history: defined rows exactly before the stopping look
    ah = ex["alloc_history"].astype(float)
    defined = ~np.isnan(ah).any(axis=2)
    assert (np.isnan(ah).all(axis=2) | defined).all(), f"{what}: partly-NaN allocation row"
    stop = ex["stop_look"].astype(int)
    assert ((stop >= 0) & (stop < j)).all()
    assert (defined == (np.arange(j)[None, :] < stop[:, None])).all(), f"{what}: allocation rows vs stopping look"
    rows = ah[defined]
    assert (rows >= 0).all() and np.allclose(rows.sum(axis=1), 1.0, rtol=0, atol=8 * F32), f"{what}: {rows}"
    dropped_at = ex["status_look"][:, None, :] <= np.arange(j)[None, :, None]
    dropped_by = np.isin(res.status, DROPPED)[:, None, :] & dropped_at
    assert (ah[dropped_by & defined[:, :, None]] == 0).all(), f"{what}: allocation to a dropped arm"
    # (1) final_alloc: the last allocation used, where positive
    initial = rec.calls[0][2]
    last_used = np.where(stop[:, None] > 0, ah[np.arange(t), np.maximum(stop - 1, 0)], initial)
    assert np.allclose(last_used.sum(axis=1), 1.0, rtol=0, atol=8 * F32)
    fa = np.asarray(ex["final_alloc"])
    assert np.isfinite(fa).all() and (fa >= 0).all() and (fa <= 1).all(), f"{what}: final_alloc {fa}"
    pos = last_used > 0
    assert np.allclose(fa[pos], last_used[pos], rtol=0, atol=F32), f"{what}: final_alloc is not the last allocation"

    # (2) caps, (3) maximum sample size
    n = res.n_by_arm
    assert (n <= cd.caps[None, :]).all(), f"{what}: arm above its cap: n {n.max(axis=0)} caps {cd.caps}"
    check_counts(res, cd.randomized_n[stop], cd.max_n, what)
    # (4) final estimates, (5) P(best) over the arms still in
    check_final_estimates(res, what)
    check_prob_best(res, ~np.isin(res.status, (INFERIOR, FUTILE)), what)
    assert ex["prob_best"].shape == (t, k)


@_settings(12)
@given(case=stratified_cases())
@example(case=_lungmap_all_inferior())
def test_stratified_invariants(case: Case):
    """Stratified designs (sub-studies, strata by markers, suspension, stages, hierarchical
    borrowing, enrichment): every per-stratum allocation is a probability vector over the arms open
    in the stratum, within the allocation limits wherever they can be met (1), and the pooled
    allocations (prevalence-weighted over the strata, closed strata giving 0) are non-negative with
    sums of at most 1 (1); no stratum exceeds
    its cap or last stage and arms outside a stratum get nobody there (2); no trial exceeds its
    maximum and the pooled counts are the strata's sums (3); final estimates are finite
    probabilities (4); pooled P(best) is NaN exactly for arms dropped everywhere and sums to 1 over
    the others (5)."""
    event(f"{case.design['name']}, {case.design['endpoint']['name']}, {case.scenario_name}")
    spec = case.spec()
    assert spec.family.name == "stratified"
    cd = spec.compiled.rules
    plan = spec.compiled.plan
    rec = Recorder(allocation_probabilities)
    with mock.patch.object(stratified, "allocation_probabilities", rec):
        res = run_chunk(spec, Streams(case.seed).for_trials(np.arange(case.n_trials)))
    what = f"{case.design['name']} x {case.scenario_name}"
    ex = res.extras
    stop = ex["stop_look"].astype(int)
    arm_in = plan.arm_in.T  # (K, S): the arm randomizes in the stratum
    assert res.strata == tuple(plan.names) and res.n.shape == (case.n_trials, cd.n_arms, plan.n_strata)

    # (1)
    check_recorded_allocations(rec.calls, what)
    ah = ex["alloc_history"].astype(float)
    defined = ~np.isnan(ah).any(axis=2)
    rows = ah[defined]
    assert (rows >= 0).all() and (rows.sum(axis=1) <= 1 + 8 * F32).all(), f"{what}: pooled allocation {rows}"
    fa = np.asarray(ex["final_alloc"])
    assert np.isfinite(fa).all() and (fa >= 0).all() and (fa <= 1 + F32).all(), f"{what}: final_alloc {fa}"

    # (2) strata caps and stages; arms outside a stratum
    per_stratum = res.n.sum(axis=1)  # (T, S)
    last_stage = np.where(plan.has_stages, plan.stages.max(axis=1), np.iinfo(np.int64).max)
    assert (per_stratum <= plan.caps[None, :]).all(), f"{what}: stratum above its cap {per_stratum.max(0)} {plan.caps}"
    assert (per_stratum <= last_stage[None, :]).all(), f"{what}: stratum beyond its last stage"
    assert (res.n[:, ~arm_in] == 0).all(), f"{what}: patients on an arm outside its stratum"
    assert (ex["stratum_status"][:, ~arm_in] == INELIGIBLE).all()
    # (3) the pooled view is the strata's sums: its posterior means are those of the summed counts
    prior_a, prior_b = cd.prior_a[None, :], cd.prior_b[None, :]
    np.testing.assert_allclose(
        pooled_rate(res),
        (prior_a + res.events_by_arm) / (prior_a + prior_b + res.n_by_arm),
        rtol=1e-12,
        atol=0,
        err_msg=f"{what}: pooled posterior mean vs the strata's sums",
    )
    check_counts(res, cd.randomized_n[stop], cd.max_n, what)
    # (4)
    check_final_estimates(res, what)
    pm = res.estimates["rate"][:, arm_in]
    assert np.isfinite(pm).all() and (pm >= 0).all() and (pm <= 1).all(), f"{what}: stratum posterior means {pm}"
    assert np.isnan(res.estimates["rate"][:, ~arm_in]).all(), f"{what}: an estimate where the arm does not randomize"
    # (5) the pooled view drops an arm dropped in every stratum, as inferior, futile or equivalent
    check_prob_best(res, ~np.isin(res.status, DROPPED), what)


@_settings(6)
@given(case=platform_cases())
def test_platform_invariants(case: Case):
    """Platforms over calendar time: every allocation (per stratum) is a probability vector over the
    open arms, within the allocation limits wherever they can be met (1); no arm exceeds its
    ``max_n`` (2); randomized patients are within the randomizable
    ones and the per-stratum counts add up (3); final P(better than control) and estimates are
    finite probabilities / positive numbers for the arms that entered (4)."""
    event(f"{case.design['name']}, {case.design['endpoint']['name']}, {case.scenario_name}")
    spec = case.spec()
    assert spec.family.name == "platform"
    pd = spec.compiled.arrays
    rec = Recorder(timeline.allocate)
    kernel = []  # the platform kernel's own results: its running count of patients per arm
    real = timeline.simulate_platform

    def simulate_platform(*args, **kwargs):
        kernel.append(real(*args, **kwargs))
        return kernel[-1]

    with (
        mock.patch.object(timeline, "allocate", rec),
        mock.patch.object(timeline, "simulate_platform", simulate_platform),
    ):
        res = run_chunk(spec, Streams(case.seed).for_trials(np.arange(case.n_trials)))
    what = f"{case.design['name']} x {case.scenario_name}"
    assert rec.calls
    for args, _, out in rec.calls:
        _, adaptive, _, _, in_trial, open_, control = args
        assert_allocation_rows(out, open_, what)
        check_limits(pd, adaptive, in_trial, open_, control, out, what)
    n = res.n_by_arm
    assert (n <= pd.caps[None, :]).all(), f"{what}: arm above its cap: {n.max(axis=0)} vs {pd.caps}"
    assert len(kernel) == 1 and (kernel[0].n == n).all(), f"{what}: per-stratum counts vs the kernel's arm counts"
    assert (kernel[0].n <= pd.caps[None, :]).all()
    assert (res.extras["n_period"].sum(axis=1) == n).all()
    assert (res.n_randomized <= res.extras["n_randomizable"]).all()
    assert (res.events >= 0).all()
    entered = ~np.isnan(res.extras["opened_at"])
    entered[:, pd.control] = False
    pb = res.extras["prob_better"][entered]
    assert np.isfinite(pb).all() and (pb >= 0).all() and (pb <= 1).all(), f"{what}: P(better than control) {pb}"
    g = int(np.flatnonzero(res.membership.all(axis=1))[0])  # the subgroup of all patients
    est = res.estimates["final_estimate"][:, :, g][entered]
    assert np.isfinite(est).all() and (est > 0).all(), f"{what}: final estimates {est}"


# =========================================================================== 1, 2: allocation functions directly


@st.composite
def counts(draw, max_n: int = 100_000):
    """(events, patients) with extremes: 0 events, only events, up to ``max_n`` patients."""
    n = draw(st.one_of(st.sampled_from([0, 1, 2, 10, 1000, max_n]), st.integers(0, max_n)))
    y = draw(st.one_of(st.sampled_from([0, n]), st.integers(0, n)))
    return y, n


@st.composite
def beta_posteriors(draw, n_arms: int, max_n: int = 100_000):
    """(a, b) of n_arms beta posteriors: priors Beta(1, 1), Beta(1/2, 1/2) or from 0.05 to 20, plus
    extreme data."""
    a, b = [], []
    prior = unit_floats(0.05, 20.0)
    for _ in range(n_arms):
        y, n = draw(counts(max_n))
        a0, b0 = draw(st.one_of(st.just((1.0, 1.0)), st.just((0.5, 0.5)), st.tuples(prior, prior)))
        a.append(a0 + y)
        b.append(b0 + n - y)
    return np.array(a), np.array(b)


@dataclass
class AllocationInputs:
    """A design (a look case) and the state of a few trials at one look: posteriors, arms in the
    trial, arms open (below their cap), each trial's control."""

    case: Case
    a: np.ndarray
    b: np.ndarray
    in_trial: np.ndarray
    open_: np.ndarray
    control: np.ndarray
    look: int


def bool_rows(rows: int, k: int):
    return st.lists(st.lists(st.booleans(), min_size=k, max_size=k), min_size=rows, max_size=rows).map(np.array)


@st.composite
def allocation_inputs(draw):
    case = draw(look_cases(max_trials=1))
    names = [a["name"] for a in case.design["arms"]]
    k = len(names)
    rows = draw(st.integers(1, 6))
    a, b = (np.array(v) for v in zip(*[draw(beta_posteriors(k)) for _ in range(rows)]))
    in_trial = draw(bool_rows(rows, k))
    if "control" in case.design:  # the initial control, or an arm that replaced it
        first = names.index(case.design["control"])
        control = np.array([draw(st.sampled_from([first] + list(range(k)))) for _ in range(rows)])
        in_trial[np.arange(rows), control] = True
    else:
        control = np.full(rows, -1)
        in_trial[np.arange(rows), [draw(st.integers(0, k - 1)) for _ in range(rows)]] = True
    open_ = in_trial & draw(bool_rows(rows, k))
    look = draw(st.integers(-1, len(case.design["looks"]["randomized_n"]) - 1))
    return AllocationInputs(case, a, b, in_trial, open_, control, look)


def _limits_with_a_hopeless_arm() -> AllocationInputs:
    """Regression (apply_limits): max_allocation 0.6 on three arms without a control, the third at
    its cap; the first arm's P(best) underflows to 0 (1 event in 1000 patients against 1000 in 1000),
    so no scale of P(best) reaches the whole allocation within the limits. The second arm used to
    get everything (1 > 0.6); the limits can be met with 0.4 / 0.6."""
    d = shipped("design", "benchmark_four_arm")
    d["arms"] = d["arms"][:3]
    for key in ("control", "control_allocation"):
        d.pop(key)
    d["decisions"] = {"superiority": 0.99, "inferiority": None}
    d["randomization"] = {"method": "adaptive", "scheme": "simple", "softening": 1.0, "max_allocation": 0.6}
    case = Case(d, shipped("scenario", "benchmark_four_arm"), "benchmark_four_arm", 0, 1)
    return AllocationInputs(
        case,
        np.array([[1.0, 1001.0, 1.0]]),
        np.array([[1001.0, 1.0, 1.0]]),
        np.ones((1, 3), dtype=bool),
        np.array([[True, True, False]]),
        np.full(1, -1),
        0,
    )


@_settings(40)
@given(inputs=allocation_inputs())
@example(inputs=_limits_with_a_hopeless_arm())
def test_allocation_probabilities_direct(inputs: AllocationInputs):
    """``allocation_probabilities`` of random valid designs on random posteriors (P(best) of extreme
    data, random dropped, capped and control arms, any look): a probability vector over the open
    arms (1), within the design's min/max allocation (rescaled when arms drop) whenever those limits
    can be met by the share left after the control."""
    cd = inputs.case.spec().compiled.rules
    pb = prob_best(inputs.a, inputs.b, inputs.in_trial)
    args = (cd, inputs.look, pb, inputs.in_trial, inputs.open_, inputs.control)
    check_recorded_allocations([(args, {}, allocation_probabilities(*args))], "allocation_probabilities")


@dataclass
class CountInputs:
    probs: np.ndarray  # (T, K) allocation probabilities (rows of zeros allowed)
    headroom: np.ndarray  # (T, K) cap minus patients so far
    n: int  # patients in the batch
    seed: int


@st.composite
def count_inputs(draw):
    t, k = draw(st.integers(1, 8)), draw(st.integers(1, 6))
    w = np.array(
        draw(
            st.lists(
                st.lists(st.one_of(st.just(0.0), unit_floats(0.0, 1.0)), min_size=k, max_size=k), min_size=t, max_size=t
            )
        )
    )
    total = w.sum(axis=1, keepdims=True)
    probs = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    headroom = np.array(draw(st.lists(st.lists(st.integers(0, 250), min_size=k, max_size=k), min_size=t, max_size=t)))
    return CountInputs(probs, headroom, draw(st.integers(0, 200)), draw(st.integers(0, 2**32 - 1)))


@_settings(60)
@given(inputs=count_inputs())
@example(inputs=CountInputs(np.zeros((1, 6)), np.array([[0, 0, 0, 0, 0, 1]]), 1, 0))  # regression: a row of
# zeros used to give its patient to the last arm under simple randomization (numpy's multinomial)
def test_randomization_respects_caps(inputs: CountInputs):
    """Simple randomization (``draw_arms``) and block randomization (``block_counts`` then ``deal``)
    never give an arm more than its headroom (cap minus patients so far) (2), nor anybody to an arm
    of probability 0 (a row of zeros gets no patients), and randomize the whole batch while the arms
    with a positive probability have room for it, never more (3)."""
    probs, headroom, n = inputs.probs, inputs.headroom, inputs.n
    rng = np.random.default_rng(inputs.seed)
    room = np.where(probs > 0, headroom, 0).sum(axis=1)
    expected = np.minimum(n, room)
    rows, k = probs.shape
    u = rng.random((rows, max(int(np.max(n)), 1)))
    simple = draw_arms(u, np.broadcast_to(np.asarray(n, dtype=np.int64), (rows,)).copy(), probs, headroom)
    block = deal(block_counts(rng.random(rows), n, probs, headroom), u)
    for arms in (simple, block):
        c = (arms[:, :, None] == np.arange(k)[None, None, :]).sum(axis=1)
        assert (c >= 0).all() and (c <= headroom).all(), f"counts {c} above headroom {headroom}"
        assert (c[probs == 0] == 0).all(), f"counts {c} for arms of probability 0: {probs}"
        assert (c.sum(axis=1) == expected).all(), f"batch of {n}: {c.sum(axis=1)} randomized, expected {expected}"


# =========================================================================== 4, 5: posterior functions directly


def assert_probability(x, what):
    x = np.asarray(x, dtype=float)
    assert np.isfinite(x).all(), f"{what}: not finite: {x}"
    assert ((x >= 0) & (x <= 1)).all(), f"{what}: outside [0, 1]: {x}"


@_settings(80)
@given(data=st.data())
def test_beta_posterior_probabilities_extreme_data(data):
    """P(best) with P(better than control) and P(|arm - control| < margin) from one grid, and
    P(max - min < margin), for 1-6 arms with extreme data: finite probabilities (4); P(best) is 0
    for inactive arms and sums to 1 over the active ones (5); comparisons are NaN exactly for the
    control, inactive arms and trials without a control."""
    k = data.draw(st.integers(1, 6))
    t = data.draw(st.integers(1, 4))
    a, b = zip(*[data.draw(beta_posteriors(k)) for _ in range(t)])
    a, b = np.array(a), np.array(b)
    active = np.array(data.draw(st.lists(st.lists(st.booleans(), min_size=k, max_size=k), min_size=t, max_size=t)))
    control = np.array([data.draw(st.integers(-1, k - 1)) for _ in range(t)])
    keep = np.array([data.draw(st.integers(0, k - 1)) for _ in range(t)])
    active[np.arange(t), np.where(control >= 0, control, keep)] = True
    margin = data.draw(unit_floats(0.001, 0.5))
    pb, vs, within = prob_best_and_vs_control(a, b, active, control, margin=margin)
    assert_probability(pb, "P(best)")
    assert (pb[~active] == 0).all()
    assert np.allclose(pb.sum(axis=1), 1.0, rtol=0, atol=1e-9), f"P(best) sums to {pb.sum(axis=1)}"
    if (a >= 0.5).all() and (b >= 0.5).all():  # another grid: the same within the documented accuracy
        assert np.allclose(prob_best(a, b, active), pb, rtol=0, atol=1e-6)
    compared = active & (control[:, None] >= 0) & (np.arange(k)[None, :] != control[:, None])
    for name, v in (("P(better than control)", vs), ("P(|arm - control| < margin)", within)):
        assert_probability(v[compared], name)
        assert np.isnan(v[~compared]).all(), f"{name}: a value where there is no comparison"
    assert_probability(prob_all_within(a, b, active, margin), "P(max - min < margin)")
    lo, hi = beta_interval(a, b, data.draw(unit_floats(0.5, 0.999)))
    assert_probability(lo, "beta quantile") and assert_probability(hi, "beta quantile")
    assert (lo <= hi).all()


@_settings(80)
@given(
    posteriors=beta_posteriors(2),
    delta=st.one_of(st.just(0.0), unit_floats(-0.5, 0.99)),
    margin=unit_floats(0.0, 0.99).filter(lambda m: m > 0),
)
@example(posteriors=(np.array([1.5, 1.5]), np.array([1.0, 1.0])), delta=5e-324, margin=5e-324)  # regression:
# a subnormal shift made a panel of zero width, and its density 0 / 0 raised ZeroDivisionError
def test_pairwise_beta_probabilities_extreme_data(posteriors, delta, margin):
    """P(X1 > X2 + delta) and P(|X1 - X2| < margin) of two beta posteriors with extreme data and any
    offset (down to the smallest float): finite probabilities (4); where the quadrature's documented
    accuracy applies (shapes >= 1/2), P(X1 > X2) + P(X2 > X1) = 1 and P(X1 > X2) = P(best of the two)
    (5), to 1e-6."""
    a, b = posteriors
    assert_probability(prob_greater(a[0], b[0], a[1], b[1], delta), "P(X1 > X2 + delta)")
    assert_probability(prob_within(a[0], b[0], a[1], b[1], margin), "P(|X1 - X2| < margin)")
    if (a >= 0.5).all() and (b >= 0.5).all():  # the documented accuracy (1e-6) holds for shapes >= 1/2
        g12 = prob_greater(a[0], b[0], a[1], b[1])
        g21 = prob_greater(a[1], b[1], a[0], b[0])
        assert abs(g12 + g21 - 1.0) < 1e-6, (g12, g21)
        assert abs(prob_best(a[None], b[None])[0, 0] - g12) < 1e-6


@_settings(60)
@given(data=st.data())
def test_survival_posteriors_extreme_data(data):
    """Gamma posteriors of exponential hazards with 0 to 10^5 events and exposures from 0 to 10^7
    months: P(HR < h) and the predictive probability of a confirmatory trial are finite probabilities
    (4); hazard intervals and median PFS (with its interval) are finite, positive and ordered."""
    shape0, rate0 = data.draw(unit_floats(0.1, 20.0)), data.draw(unit_floats(0.1, 50.0))
    d = [data.draw(st.one_of(st.sampled_from([0, 1, 100_000]), st.integers(0, 100_000))) for _ in range(2)]
    e = [data.draw(st.one_of(st.sampled_from([0.0, 1e-3, 1e7]), unit_floats(0.0, 1e7))) for _ in range(2)]
    (ak, bk), (ac, bc) = (gamma_posterior(d[i], e[i], shape0, rate0) for i in range(2))
    h = data.draw(st.one_of(st.just(1.0), unit_floats(0.01, 100.0)))
    assert_probability(prob_hr_below(ak, bk, ac, bc, h), "P(HR < h)")
    events = data.draw(st.integers(1, 2000))
    assert_probability(
        pp_confirmatory_survival(ak, bk, ac, bc, events, data.draw(unit_floats(0.001, 0.2))),
        "predictive probability (survival)",
    )
    lo, hi = hazard_interval(ak, bk)
    assert np.isfinite([lo, hi]).all() and 0 <= lo <= hi, (lo, hi)
    est, mlo, mhi = median_pfs(ak, bk)
    assert np.isfinite([est, mlo, mhi]).all() and 0 < mlo <= est <= mhi, (est, mlo, mhi)
    mean, var = log_hr_moments(ak, bk, ac, bc)
    assert np.isfinite([mean, var]).all() and var > 0


@_settings(40)
@given(data=st.data())
def test_predictive_probabilities_extreme_data(data):
    """Beta-binomial predictive probabilities with extreme data: a single-arm trial (10^5 patients
    so far), a two-arm comparison and a confirmatory 1:1 trial (10^5 patients per arm so far) give
    finite probabilities (4)."""
    y, n = data.draw(counts())
    a0, b0 = data.draw(unit_floats(0.05, 20.0)), data.draw(unit_floats(0.05, 20.0))
    more = data.draw(st.integers(0, 60))
    assert_probability(
        pp_single_arm(y, n, n + more, a0, b0, data.draw(unit_floats(0.0, 1.0)), data.draw(unit_floats(0.01, 0.99))),
        "predictive probability (single arm)",
    )
    yc, nc = data.draw(counts())
    assert_probability(
        pp_confirmatory(y, n, yc, nc, data.draw(st.integers(1, 150)), data.draw(unit_floats(0.001, 0.2)), (a0, b0)),
        "predictive probability (confirmatory)",
    )
    (yt, nt), (yc, nc) = data.draw(counts(40)), data.draw(counts(40))
    assert_probability(
        pp_two_arm(
            yt,
            nt,
            yc,
            nc,
            nt + data.draw(st.integers(0, 20)),
            nc + data.draw(st.integers(0, 20)),
            (a0, b0),
            data.draw(unit_floats(0.0, 0.3)),
            data.draw(unit_floats(0.01, 0.99)),
        ),
        "predictive probability (two arms)",
    )


_FAST_GRID = engine_grid()


@_settings(12)
@given(data=st.data())
def test_hierarchical_posteriors_extreme_data(data):
    """The hierarchical model across strata with extreme counts per stratum (no events, only events,
    up to 10^5 patients): exact stratum means and P(rate > p0) are finite probabilities (4), and so
    are the moments and moment-matched beta posteriors the engine decides on, with the P(arm better
    than control by delta) it computes from them. (The exact quantile and comparison kernels of
    posterior.hierarchical, which the engine does not call, are left to tests/test_hierarchical.py:
    compiling them would double this file's time on a fresh checkout.)"""
    s = data.draw(st.integers(1, 4))
    k = 2
    pairs = [data.draw(counts()) for _ in range(k * s)]
    y = np.array([p[0] for p in pairs]).reshape(1, k, s)
    n = np.array([p[1] for p in pairs]).reshape(1, k, s)
    post = hierarchical_posterior(y, n)
    assert_probability(stratum_mean(post), "hierarchical stratum mean")
    assert_probability(prob_stratum_above(post, data.draw(unit_floats(0.0, 1.0))), "P(stratum rate > p0)")
    mean, var = hierarchical_moments(y, n, HierarchicalPrior(), _FAST_GRID)
    assert_probability(mean, "hierarchical moments (mean)")
    assert np.isfinite(var).all() and (var >= 0).all()
    a, b = hierarchical_beta_approx(y, n, HierarchicalPrior(), _FAST_GRID)
    assert np.isfinite(a).all() and np.isfinite(b).all() and (a > 0).all() and (b > 0).all(), (a, b)
    assert_probability(
        prob_greater(a[:, 1], b[:, 1], a[:, 0], b[:, 0], data.draw(unit_floats(0.0, 0.3))),
        "P(stratum rate better than control), moment-matched",
    )


# =========================================================================== extreme inputs
#
# Inputs at the edges of what a file may say run (or are refused), never crash or hang, and keep
# every posterior probability finite and in [0, 1]: true rates of exactly 0 and 1, one patient per
# look, a maximum sample size of 2, 50 arms, 20 strata, and a planned million trials (accepted and
# started). These go through the public functions only (the configuration parsers, Spec.from_models
# and runner.run), as a user's script would.

from platform_sim.config.base import MAX_ARMS  # noqa: E402
from platform_sim.results import INELIGIBLE as _NOT_IN_STRATUM  # noqa: E402
from platform_sim.runner import run  # noqa: E402

EXTREME_RATES = [0.0, 1.0, 0.0, 1.0, 1e-12, 1.0 - 1e-12, 0.5]


def _extreme_scenario(rates: list[float], n_sites: int) -> dict:
    scenario = {
        "name": "extreme",
        "endpoints": {"orr": {"kind": "binary"}},
        "treatments": {f"t{i}": {"rates": {"orr": r}} for i, r in enumerate(rates)},
    }
    if n_sites:
        scenario["population"] = {
            "name": "sites",
            "markers": {
                "site": {"levels": [f"s{i:02d}" for i in range(n_sites)], "probabilities": [1.0 / n_sites] * n_sites}
            },
        }
    return scenario


@st.composite
def extreme_cases(draw):
    """A design and scenario at the edges: rates of exactly 0 and 1 (or within 1e-12 of them), one
    patient per look or a maximum of 2 patients, up to 50 arms, up to 20 strata, priors from
    Jeffreys' to a million pseudo-patients."""
    n_arms = draw(st.sampled_from([2, 2, 3, 5, 50]))
    rates = [draw(st.sampled_from(EXTREME_RATES)) for _ in range(n_arms)]
    n_sites = draw(st.sampled_from([0, 0, 20])) if n_arms <= 5 else 0
    looks_kind = draw(st.sampled_from(["one_per_look", "size_two", "two_looks"]))
    if looks_kind == "one_per_look":
        first = draw(st.integers(1, 5))
        looks = {"first": first, "every": 1, "last": first + draw(st.integers(0, 40))}
    elif looks_kind == "size_two":
        looks = {"randomized_n": [2]}
    else:
        looks = {"randomized_n": [2 * n_arms, 6 * n_arms]}
    control = draw(st.booleans())
    adaptive = draw(st.booleans())
    shape = draw(st.sampled_from([0.5, 1.0, 10.0, 1e6]))
    design = {
        "name": "extreme",
        "endpoint": {"name": "orr", "direction": draw(st.sampled_from(["higher_is_better", "lower_is_better"]))},
        "arms": [{"name": f"a{i}", "treatment": f"t{i}"} for i in range(n_arms)],
        "prior": {"a": shape, "b": draw(st.sampled_from([0.5, 1.0, shape]))},
        "randomization": (
            {
                "method": "adaptive",
                "scheme": draw(st.sampled_from(["simple", "block"])),
                "softening": draw(st.sampled_from([0.0, 0.5, 1.0, 4.0, "thall_wathen"])),
            }
            if adaptive
            else {"method": "fixed", "scheme": draw(st.sampled_from(["simple", "block"]))}
        ),
        "looks": looks,
        "decisions": {
            "superiority": draw(st.sampled_from([0.51, 0.9, 0.999999])) if control else 0.999,
            "inferiority": draw(st.sampled_from([None, 0.001])),
        },
        "clinically_relevant_difference": 0.1,
    }
    if control:
        design["control"] = "a0"
        if draw(st.booleans()):
            design["decisions"]["equivalence"] = {"probability": 0.9, "margin": 0.05}
    if n_sites:
        design["strata"] = {"by": ["site"]}
    return Case(
        design, _extreme_scenario(rates, n_sites), "extreme", draw(st.integers(0, 2**16)), draw(st.integers(1, 8))
    )


@_settings(40)
@given(case=extreme_cases())
def test_extreme_inputs_run_and_keep_probabilities_in_the_unit_interval(case: Case):
    """Every extreme case runs; patients and events stay within the design's bounds; P(best) is NaN
    exactly for the arms dropped (as the design's family reads a drop), in [0, 1] and summing to 1
    over the others; final posterior means and credible limits, per arm and per stratum, are finite
    probabilities; every allocation is a probability vector."""
    design, scenario = copy.deepcopy(case.design), copy.deepcopy(case.scenario)
    spec = Spec.from_models(parse_design(design), parse_scenario(scenario))
    what = (
        f"{len(design['arms'])} arms, rates {sorted(set(r['rates']['orr'] for r in scenario['treatments'].values()))}"
        f", looks {design['looks']}, strata {design.get('strata')}"
    )
    event(f"{len(design['arms'])} arms" + (", 20 strata" if "strata" in design else ""))
    res = run(spec, case.n_trials, seed=case.seed, chunk_size=case.n_trials)
    assert res.n_trials == case.n_trials and res.n_arms == len(design["arms"])
    assert spec.family.name == ("stratified" if "strata" in design else "looks"), what
    assert (res.n_randomized <= spec.design.looks.max_n).all() and (res.n >= 0).all(), what
    assert (res.events >= 0).all() and (res.events <= res.n).all(), what
    # P(best): designs with looks keep an arm dropped as equivalent in P(best); the pooled view of a
    # stratified design drops an arm dropped everywhere, whatever the reason (test_*_invariants)
    dropped = (INFERIOR, FUTILE) if spec.family.name == "looks" else DROPPED
    check_prob_best(res, ~np.isin(res.status, dropped), what)
    check_final_estimates(res, what)
    fa = np.asarray(res.extras["final_alloc"], dtype=float)
    assert np.isfinite(fa).all() and (fa >= 0).all() and (fa <= 1 + F32).all(), f"{what}: final_alloc {fa}"
    history = np.asarray(res.extras["alloc_history"], dtype=float)
    rows = history[~np.isnan(history).any(axis=2)]
    assert ((rows >= 0) & (rows <= 1 + F32)).all(), f"{what}: allocation {rows}"
    if "strata" in design:  # pooled over the strata by prevalence; a stratum that stopped gives 0
        assert (rows.sum(axis=1) <= 1 + 8 * F32).all(), f"{what}: pooled allocation sums {rows.sum(axis=1)}"
    else:
        assert np.allclose(rows.sum(axis=1), 1.0, rtol=0, atol=8 * F32), f"{what}: allocation sums {rows.sum(axis=1)}"
    if "strata" in design:
        assert len(res.strata) == 20, what
        assert (res.extras["stratum_status"] != _NOT_IN_STRATUM).all(), f"{what}: every arm runs in every stratum"
        per_stratum = res.estimates["rate"]  # (T, K, S) posterior means per arm x stratum
        assert np.isfinite(per_stratum).all() and (per_stratum >= 0).all() and (per_stratum <= 1).all(), (
            f"{what}: per-stratum posterior means {per_stratum}"
        )


def test_more_arms_than_the_engines_index_are_refused():
    design = {
        "name": "crowded",
        "endpoint": {"name": "orr", "direction": "higher_is_better"},
        "arms": [{"name": f"a{i}", "treatment": "t0"} for i in range(MAX_ARMS + 1)],
        "control": "a0",
        "prior": {"a": 1, "b": 1},
        "randomization": {"method": "fixed", "scheme": "block"},
        "looks": {"randomized_n": [1000]},
        "decisions": {"superiority": 0.99, "inferiority": None},
        "clinically_relevant_difference": 0.1,
    }
    from platform_sim.config import ConfigError

    try:
        parse_design(design)
    except ConfigError as exc:
        (problem,) = exc.problems
        assert problem.path == "design.arms" and f"at most {MAX_ARMS} items" in problem.message
    else:
        raise AssertionError("101 arms accepted")
    design["arms"] = design["arms"][:MAX_ARMS]
    assert len(parse_design(design).arms) == MAX_ARMS


def test_a_million_planned_trials_are_accepted_started_and_resumable(tmp_path, spawn):
    """A run of 10^6 trials is planned (2,000 chunks), starts writing chunks at once, stops on
    Ctrl-C with exit status 130, and is left resumable (the full run is not needed here)."""
    import json
    import signal
    import sys
    import time

    out = tmp_path / "million"
    proc = spawn(
        [
            sys.executable,
            "-m",
            "platform_sim.cli",
            "run",
            "--design",
            "pioneer_rar",
            "--n-sims",
            "1000000",
            "--out",
            str(out),
            "--quiet",
        ]
    )  # killed with its process group when the test ends
    deadline = time.monotonic() + 180
    while len(list((out / "chunks").glob("*.json")) if (out / "chunks").is_dir() else []) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no chunk written"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"platform-sim run --out {out} --resume" in err
    assert "of 2000 chunks" in err and "of 1000000 trials) are saved" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_sims"] == 1_000_000 and manifest["complete"] is False
    assert len(manifest["checksums"]) >= 4  # two files per chunk, recorded as each chunk was written
    from census import record_fault

    record_fault(
        "SIGINT (Ctrl-C) during a planned run of 10^6 trials",
        "after 2 of 2,000 chunks",
        "exit 130, the resume command printed, the manifest and checksums of the saved chunks in place",
    )
