"""The final Bayesian analysis of one trial: arm x biomarker-group regression in PyMC.

Input is the patient-level data of one (simulated or real) trial, one row per randomized
patient: columns ``arm``, ``group`` (the biomarker subgroup) and either ``response`` (0/1,
binary endpoint) or ``time`` (months, > 0) and ``event`` (0/1, survival endpoint).

The model, for patient i on arm a(i) in group g(i)::

    eta_i = alpha + beta[a(i)] + delta[g(i)] + gamma[a(i), g(i)]

    binary:    logit P(response_i = 1) = eta_i                    (logistic regression)
    survival:  hazard_i = exp(eta_i)  (per month, constant in time: exponential PH model)

with these constraints, which make every parameter identifiable and give each a meaning:

* the control arm has beta = 0 and gamma = 0, so ``alpha + delta[g]`` is the control's log
  odds (log hazard) in group g;
* the reference group (the first listed group with any patient) has delta = 0, so ``alpha`` is
  the control's log odds (log hazard per month) in the reference group and ``delta[g]`` the
  prognostic difference of group g from it, on the control arm;
* the interactions of each treatment arm sum to zero over the G_k groups in which it has
  patients (all groups, unless a cell is empty), so ``beta[k]`` is arm k's treatment effect
  (log odds ratio or log hazard ratio versus control) averaged over those groups with equal
  weights, and ``gamma[k, g]`` how much group g departs from that average.

The effect of arm k in group g, the quantity of interest, is the named deterministic
``effect[k, g] = beta[k] + gamma[k, g]`` (log odds ratio: positive = benefit; log hazard ratio:
negative = benefit).

Priors (weakly informative; :class:`FinalAnalysisPrior`)::

    alpha               ~ Normal(0, 2.5)
    beta[k]             ~ Normal(0, 2.5)
    delta[g]            ~ Normal(0, 2.5)
    tau                 ~ HalfNormal(1)
    gamma[k, groups with patients]  ~ ZeroSumNormal(tau)
    gamma[k, g without patients]    ~ Normal(0, tau^2 (1 + 1 / G_k))

Normal(0, 2.5) on logistic coefficients is the weakly informative scale of Gelman, Jakulin,
Pittau & Su (2008, Ann Appl Stat 2:1360). The interactions are partially pooled: the groups of
one arm share the between-group spread tau, learned from all arms, and the effects of groups
with few patients are shrunk toward the arm's average. This is the exchangeable model for
subgroup effects, effect[k, g] ~ Normal(mu_k, tau^2) independently over groups (Jones,
Ohlssen, Neuenschwander, Racine & Branson 2011, Clin Trials 8:129), written in terms of the
groups' own average: for such effects the deviations from their average are a Normal(0, tau^2)
sample conditioned on summing to zero (ZeroSumNormal(tau)) and independent of the average,
which here takes the prior of beta[k]. A group in which arm k has no patients gets the
deviation of a new group from the exchangeable model, e_new - average of G_k groups, whose
variance is tau^2 (1 + 1 / G_k): its effect is informed by the prior and by the arm's other
groups only.

Sampling. The zero-sum deviations are written with an orthonormal (Helmert) basis H of the
zero-sum vectors, gamma[k, groups with patients] = H u with u ~ Normal(0, tau^2 I), and sampled
either centred (u itself, variable ``gamma_contrast``) or non-centred (u = tau z with
z ~ Normal(0, 1), variable ``gamma_z``), the same model either way. Non-centred avoids the funnel
between tau and the deviations when cells are small; centred avoids the thin curved ridge that
the non-centred form meets when cells are large (Papaspiliopoulos, Roberts & Skold 2007, Stat
Sci 22:59). ``parameterization="auto"`` picks centred for an arm whose every cell's rough
standard error of the effect is below ``CENTRED_SE_FRACTION`` times the prior scale of tau.
The deviations of empty cells are always non-centred (their posterior is their prior).

Likelihood. Within an arm x group cell every patient has the same linear predictor, so the
model only sees each cell's sufficient statistics: the number of responders among n patients
(Binomial(n, p), equal to the product of the patients' Bernoulli terms up to a constant), or the
number of events D and total follow-up T in months, for which the exponential likelihood with
censoring, sum_i event_i log h - h time_i = D log h - h T, is the Poisson(h T) log likelihood of
D up to a constant (Holford 1976, Biometrics 32:587). Fits therefore cost the same for 100 or
100,000 patients.

Empty cells. A treatment arm with no patients in a group still has an effect there: the arm's
average plus a new group's deviation, from the hierarchical prior, marked by ``n = 0`` in
:attr:`FinalAnalysis.effects`. With a single group there are no interactions (no tau, gamma or
delta) and effect = beta. A listed arm without any patient is an error, as is a patient whose
arm or group is not listed.

PyMC and ArviZ are imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from platform_sim.config import Problem
from platform_sim.config.load import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure

__all__ = [
    "Diagnostics",
    "FinalAnalysis",
    "FinalAnalysisPrior",
    "build_model",
    "cell_table",
    "diagnostics",
    "fit_final_analysis",
    "forest_plot",
    "save_netcdf",
]

ENDPOINTS = ("binary", "survival")
# Vehtari, Gelman, Simpson, Carpenter & Buerkner (2021, Bayesian Anal 16:667): rank-normalized
# split R-hat below 1.01, and a bulk and tail effective sample size of at least 100 per chain.
R_HAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
MAIN_VARIABLES = ("alpha", "beta", "delta", "tau", "effect")
_SCALE = {"binary": "log odds ratio", "survival": "log hazard ratio"}
_WARNINGS_LISTED = 5  # per kind of warning; the rest are counted


@dataclass(frozen=True)
class FinalAnalysisPrior:
    """Prior scales of the final-analysis model (see the module docstring).

    intercept_mean, intercept_sd: alpha, the control's log odds (binary) or log hazard per month
    (survival) in the reference group. effect_sd: beta, the arms' average log odds ratio or log
    hazard ratio. group_sd: delta, the prognostic differences between groups on control.
    tau_sd: scale of the half-normal prior on tau, the between-group spread of a treatment
    effect (tau = 1 puts a group's effect about one log unit from the arm's average).
    """

    intercept_mean: float = 0.0
    intercept_sd: float = 2.5
    effect_sd: float = 2.5
    group_sd: float = 2.5
    tau_sd: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if not (isinstance(self.intercept_mean, (int, float)) and math.isfinite(self.intercept_mean)):
            problems.append(Problem("prior.intercept_mean", "must be a finite number", self.intercept_mean))
        for name in ("intercept_sd", "effect_sd", "group_sd", "tau_sd"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                problems.append(Problem(f"prior.{name}", "must be a positive number", value))
        if problems:
            raise ConfigError(problems)


class Diagnostics(NamedTuple):
    """MCMC diagnostics of a fit; ``warnings`` is empty when nothing needs attention."""

    divergences: int
    max_r_hat: float
    min_ess_bulk: float
    warnings: list[str]


@dataclass(frozen=True)
class FinalAnalysis:
    """The result of :func:`fit_final_analysis`.

    idata: ArviZ InferenceData with groups ``posterior`` (alpha, beta, delta, tau, the sampled
    interaction terms gamma_contrast and / or gamma_z, gamma, effect; labelled by the
    coordinates ``arm`` = treatment arms, ``group`` and ``other_group`` = groups other than the
    reference), ``sample_stats``, ``log_likelihood``,
    ``observed_data`` (per non-empty cell) and ``constant_data`` (``patients``, ``events`` and
    for survival ``exposure`` in months, by ``all_arms`` x ``group``); the posterior's attrs hold
    endpoint, control and reference group.
    summary: ``az.summary`` of alpha, beta, delta, tau and effect (mean, sd, 95% HDI, MCSEs,
    ess_bulk, ess_tail, r_hat), one row per parameter element.
    effects: one row per treatment arm x group (arms, then groups, in the order given) with
    n / events (patients and responders or events on the arm in the group), n_control /
    events_control, the effect's posterior mean, sd, 95% equal-tailed interval (lower, upper)
    on the log scale, mcse_mean, prob_benefit (P(OR > 1) or P(HR < 1)) and its mcse (NaN when
    every draw lies on the same side of 0: the probability is then about 0 or 1), and the
    median and interval on the ratio scale (ratio, ratio_lower, ratio_upper: OR or HR).
    A row with n = 0 has no data of its own: its effect comes from the hierarchical prior
    (the arm's average and tau).
    divergences, max_r_hat, min_ess_bulk, warnings: see :func:`diagnostics`.
    """

    idata: Any
    summary: pd.DataFrame
    effects: pd.DataFrame
    divergences: int
    max_r_hat: float
    min_ess_bulk: float
    warnings: list[str]
    endpoint: str
    control: str
    reference_group: str
    prior: FinalAnalysisPrior = field(default_factory=FinalAnalysisPrior)

    @property
    def converged(self) -> bool:
        """True when no diagnostic warning was raised."""
        return not self.warnings


# ---------------------------------------------------------------------------------------------
# input


def _names(values, what: str, problems: list[Problem]) -> list[str]:
    if isinstance(values, str) or values is None:
        problems.append(Problem(what, "must be a list of names", values))
        return []
    names = list(values)
    if not names:
        problems.append(Problem(what, "must name at least one level", names))
    bad = [v for v in names if not isinstance(v, str) or not v]
    if bad:
        problems.append(Problem(what, "names must be non-empty strings", bad[0]))
    duplicates = sorted({v for v in names if names.count(v) > 1}, key=str)
    if duplicates:
        problems.append(Problem(what, "names must be unique", duplicates))
    return names


def _plain(value):
    """A numpy scalar as the Python number it holds, so messages read 3, not np.int64(3)."""
    return value.item() if isinstance(value, np.generic) else value


def _binary_column(data: pd.DataFrame, column: str, problems: list[Problem]) -> np.ndarray:
    values = pd.to_numeric(data[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        first = _plain(data[column].to_numpy()[np.argmax(bad)])
        problems.append(Problem(f"data.{column}", f"must be 0 or 1 ({int(bad.sum())} rows are not)", first))
    return values


def cell_table(
    data: pd.DataFrame, *, arms: Sequence[str], groups: Sequence[str], control: str | None, endpoint: str
) -> pd.DataFrame:
    """Validate the patient-level data and tally it by arm x group.

    Returns a DataFrame with one row per arm x group (all arms, control included, then groups,
    in the order given) and columns arm, group, patients, events (responders or events) and,
    for survival, exposure (total follow-up in months). Raises :class:`ConfigError` naming each
    bad argument, column or value.
    """
    problems: list[Problem] = []
    if endpoint not in ENDPOINTS:
        problems.append(Problem("endpoint", f"must be one of {', '.join(ENDPOINTS)}", endpoint))
    arm_names = _names(arms, "arms", problems)
    group_names = _names(groups, "groups", problems)
    if len(arm_names) == 1:
        problems.append(Problem("arms", "needs a control and at least one other arm", arm_names))
    if control is not None and arm_names and control not in arm_names:
        problems.append(Problem("control", f"is not one of the arms ({', '.join(map(str, arm_names))})", control))
    if not isinstance(data, pd.DataFrame):
        problems.append(Problem("data", "must be a pandas DataFrame", type(data).__name__))
        raise ConfigError(problems)
    outcome = ["response"] if endpoint == "binary" else ["time", "event"] if endpoint == "survival" else []
    missing = [c for c in ["arm", "group", *outcome] if c not in data.columns]
    if missing:
        problems.append(Problem("data", f"is missing column(s) {', '.join(missing)}", sorted(map(str, data.columns))))
    if len(data) == 0:
        problems.append(Problem("data", "has no patients", 0))
    if problems:
        raise ConfigError(problems)

    for column, known in (("arm", arm_names), ("group", group_names)):
        labels = data[column]
        if labels.isna().any():
            problems.append(Problem(f"data.{column}", f"has {int(labels.isna().sum())} missing values"))
        unknown = sorted({str(v) for v in labels.dropna().unique()} - set(known))
        if unknown:
            problems.append(
                Problem(f"data.{column}", f"has values not listed in {column}s ({', '.join(known)})", unknown)
            )
    if endpoint == "binary":
        events = _binary_column(data, "response", problems)
        time = None
    else:
        events = _binary_column(data, "event", problems)
        time = pd.to_numeric(data["time"], errors="coerce").to_numpy(dtype=float)
        bad = ~(np.isfinite(time) & (time > 0))
        if bad.any():
            first = _plain(data["time"].to_numpy()[np.argmax(bad)])
            problems.append(
                Problem("data.time", f"must be a positive number of months ({int(bad.sum())} rows are not)", first)
            )
    if problems:
        raise ConfigError(problems)

    arm_index = pd.Categorical(data["arm"].astype(str), categories=arm_names).codes
    group_index = pd.Categorical(data["group"].astype(str), categories=group_names).codes
    shape = (len(arm_names), len(group_names))
    patients = np.zeros(shape, dtype=np.int64)
    np.add.at(patients, (arm_index, group_index), 1)
    empty = [a for a, n in zip(arm_names, patients.sum(axis=1)) if n == 0]
    if empty:
        problems.append(Problem("data.arm", "has no patients on listed arm(s); leave them out of arms", empty))
        raise ConfigError(problems)
    tally = np.zeros(shape)
    np.add.at(tally, (arm_index, group_index), events)
    table = pd.DataFrame(
        {
            "arm": np.repeat(arm_names, len(group_names)),
            "group": np.tile(group_names, len(arm_names)),
            "patients": patients.ravel(),
            "events": tally.ravel().round().astype(np.int64),
        }
    )
    if endpoint == "survival":
        exposure = np.zeros(shape)
        np.add.at(exposure, (arm_index, group_index), time)
        table["exposure"] = exposure.ravel()
    return table


# ---------------------------------------------------------------------------------------------
# model


def _zero_sum_basis(size: int) -> np.ndarray:
    """An orthonormal basis (size x size-1) of the vectors of length ``size`` summing to zero
    (Helmert contrasts): if u ~ Normal(0, tau^2 I), basis @ u is a ZeroSumNormal(tau) vector."""
    basis = np.zeros((size, max(size - 1, 0)))
    for j in range(1, size):
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -float(j)
        basis[:, j - 1] /= np.sqrt(j * (j + 1.0))
    return basis


def _log_effect_se(cells: pd.DataFrame, control: str, endpoint: str) -> pd.Series:
    """Rough standard error of each treatment cell's log odds ratio (log hazard ratio) against
    the control in its group, from the counts with half an event added (inf for empty cells).
    Only used to choose between the centred and non-centred forms of the interactions."""
    events = cells["events"].to_numpy(dtype=float) + 0.5
    if endpoint == "binary":
        patients = cells["patients"].to_numpy(dtype=float) + 1.0
        information = events * (patients - events) / patients
    else:
        information = events
    information[cells["patients"].to_numpy() == 0] = 0.0
    with np.errstate(divide="ignore"):
        variance = pd.Series(1.0 / information, index=pd.MultiIndex.from_frame(cells[["arm", "group"]]))
    on_control = variance.xs(control, level="arm")
    treatment = variance.drop(index=control, level="arm")
    return np.sqrt(treatment + on_control.reindex(treatment.index.get_level_values("group")).to_numpy())


PARAMETERIZATIONS = ("auto", "centred", "non-centred")
# "auto" samples an arm's interactions centred when every one of its cells has a rough standard
# error of the effect below this fraction of the prior scale of tau: the data then pin the
# interactions more tightly than the between-group spread, where the non-centred form meets a
# thin curved ridge in (tau, z) and the centred form does not (Betancourt & Girolami 2015, in
# Current Trends in Bayesian Methodology with Applications, CRC). The fraction was set from
# 16 pairs of fits (one or two treatment arms in two or three groups, 20 to 600 patients per
# cell): at 0.07 to 0.14 the centred form ran without divergences and the non-centred form
# diverged; at 0.16 to 0.17 neither did; from 0.2 up the centred form diverged in 7 of 10
# fits, the non-centred in none.
CENTRED_SE_FRACTION = 0.15


def build_model(
    cells: pd.DataFrame,
    *,
    control: str,
    endpoint: str,
    prior: FinalAnalysisPrior | None = None,
    parameterization: str = "auto",
):
    """The PyMC model for the tallies of :func:`cell_table` (see the module docstring).

    ``control`` names the control arm; ``parameterization`` (``"auto"``, ``"centred"`` or
    ``"non-centred"``) is how the interactions are sampled (the posterior is the same).
    Returns ``(model, reference_group)``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    prior = FinalAnalysisPrior() if prior is None else prior
    arm_names = list(dict.fromkeys(cells["arm"]))
    group_names = list(dict.fromkeys(cells["group"]))
    treatments = [a for a in arm_names if a != control]
    by_group = cells.groupby("group", sort=False)["patients"].sum()
    reference = next(g for g in group_names if by_group[g] > 0)
    other_groups = [g for g in group_names if g != reference]

    observed = cells[cells["patients"] > 0]
    group_of = np.array([group_names.index(g) for g in observed["group"]])
    treatment_of = np.array([treatments.index(a) if a != control else 0 for a in observed["arm"]])
    treated = (observed["arm"] != control).to_numpy(dtype=float)
    other_of = np.array([other_groups.index(g) if g != reference else 0 for g in observed["group"]])
    not_reference = (observed["group"] != reference).to_numpy(dtype=float)

    coords = {
        "arm": treatments,
        "group": group_names,
        "other_group": other_groups,
        "cell": [f"{a} | {g}" for a, g in zip(observed["arm"], observed["group"])],
    }
    interactions = None
    if len(group_names) > 1:
        # Each arm's interactions in the groups where it has patients are a zero-sum vector,
        # basis @ u with u ~ Normal(0, tau) (Helmert contrasts), sampled as u (centred) or as
        # tau * z with z ~ Normal(0, 1) (non-centred). In a cell without patients the
        # interaction is that of a new group, tau * sqrt(1 + 1 / G_k) * z, always non-centred.
        se = _log_effect_se(cells, control, endpoint)
        n_cells = len(treatments) * len(group_names)
        to_cells_centred, to_cells_standard, scale_standard = [], [], []
        centred_labels, standard_labels = [], []
        patients = cells["patients"].to_numpy().reshape(len(arm_names), len(group_names))
        for k, arm in enumerate(treatments):
            with_patients = list(np.flatnonzero(patients[arm_names.index(arm)] > 0))
            basis = _zero_sum_basis(len(with_patients))
            centre = parameterization == "centred" or (
                parameterization == "auto"
                and bool((se.loc[arm].iloc[with_patients] < CENTRED_SE_FRACTION * prior.tau_sd).all())
            )
            for j in range(basis.shape[1]):
                column = np.zeros(n_cells)
                column[[k * len(group_names) + g for g in with_patients]] = basis[:, j]
                (to_cells_centred if centre else to_cells_standard).append(column)
                (centred_labels if centre else standard_labels).append(f"{arm}: contrast {j + 1}")
                if not centre:
                    scale_standard.append(1.0)
            for g, group in enumerate(group_names):
                if g not in with_patients:
                    column = np.zeros(n_cells)
                    column[k * len(group_names) + g] = 1.0
                    to_cells_standard.append(column)
                    standard_labels.append(f"{arm}: new group {group}")
                    scale_standard.append(np.sqrt(1.0 + 1.0 / len(with_patients)))
        if centred_labels:
            coords["centred_contrast"] = centred_labels
        if standard_labels:
            coords["standardized_term"] = standard_labels
        interactions = (np.array(to_cells_centred).T, np.array(to_cells_standard).T * np.array(scale_standard))

    with pm.Model(coords=coords) as model:
        alpha = pm.Normal("alpha", mu=prior.intercept_mean, sigma=prior.intercept_sd)
        beta = pm.Normal("beta", mu=0.0, sigma=prior.effect_sd, dims="arm")
        eta = alpha + treated * beta[treatment_of]
        if other_groups:
            delta = pm.Normal("delta", mu=0.0, sigma=prior.group_sd, dims="other_group")
            eta = eta + not_reference * delta[other_of]
        if interactions is not None:
            centred_map, standard_map = interactions
            tau = pm.HalfNormal("tau", sigma=prior.tau_sd)
            flat = pt.zeros(len(treatments) * len(group_names))
            if "centred_contrast" in coords:
                contrast = pm.Normal("gamma_contrast", mu=0.0, sigma=tau, dims="centred_contrast")
                flat = flat + pt.dot(centred_map, contrast)
            if "standardized_term" in coords:
                z = pm.Normal("gamma_z", mu=0.0, sigma=1.0, dims="standardized_term")
                flat = flat + tau * pt.dot(standard_map, z)
            gamma = pm.Deterministic("gamma", flat.reshape((len(treatments), len(group_names))), dims=("arm", "group"))
            pm.Deterministic("effect", beta[:, None] + gamma, dims=("arm", "group"))
            eta = eta + treated * gamma[treatment_of, group_of]
        else:
            pm.Deterministic("effect", beta[:, None], dims=("arm", "group"))
        if endpoint == "binary":
            pm.Binomial(
                "response",
                n=observed["patients"].to_numpy(),
                logit_p=eta,
                observed=observed["events"].to_numpy(),
                dims="cell",
            )
        else:
            mu = pm.math.exp(eta) * observed["exposure"].to_numpy()
            pm.Poisson("event", mu=mu, observed=observed["events"].to_numpy(), dims="cell")
    return model, reference


# ---------------------------------------------------------------------------------------------
# diagnostics


def _element_names(data_array) -> list[str]:
    """'beta[B]', 'effect[B, atm+]', ... for every element of a DataArray without chain/draw."""
    name = data_array.name
    dims = list(data_array.dims)
    if not dims:
        return [name]
    labels = [data_array.coords[d].values if d in data_array.coords else np.arange(data_array.sizes[d]) for d in dims]
    grids = np.meshgrid(*labels, indexing="ij")
    return [f"{name}[{', '.join(str(g.flat[i]) for g in grids)}]" for i in range(grids[0].size)]


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_WARNINGS_LISTED])
    return shown if len(items) <= _WARNINGS_LISTED else f"{shown} and {len(items) - _WARNINGS_LISTED} more"


def diagnostics(idata, var_names: Sequence[str] | None = None) -> Diagnostics:
    """Divergences, the worst rank-normalized split R-hat and the smallest bulk ESS of a fit.

    ``var_names``: posterior variables to check (all of them when None; names missing from the
    posterior are skipped). Warnings are raised for any divergent transition after tuning,
    R-hat above 1.01, bulk or tail ESS below 100 per chain (Vehtari et al. 2021) and draws that
    hit the maximum tree depth. Elements whose draws are all equal have no R-hat or ESS and are
    ignored.
    """
    import arviz as az

    posterior = idata.posterior
    names = list(posterior.data_vars) if var_names is None else [v for v in var_names if v in posterior.data_vars]
    warnings: list[str] = []
    divergences = 0
    stats = getattr(idata, "sample_stats", None)
    draws_total = posterior.sizes["chain"] * posterior.sizes["draw"]
    if stats is not None and "diverging" in stats:
        divergences = int(np.asarray(stats["diverging"]).sum())
        if divergences:
            warnings.append(
                f"{divergences} divergent transitions after tuning (of {draws_total} draws): the posterior is "
                "not explored reliably; raise target_accept or simplify the model"
            )
    if stats is not None and "reaching_max_treedepth" in stats:
        capped = int(np.asarray(stats["reaching_max_treedepth"]).sum())
        if capped:
            warnings.append(f"{capped} draws hit the maximum tree depth (of {draws_total}): sampling is inefficient")
    if not names:
        return Diagnostics(divergences, float("nan"), float("nan"), warnings)

    rhat = az.rhat(posterior, var_names=names)
    ess_bulk = az.ess(posterior, var_names=names, method="bulk")
    ess_tail = az.ess(posterior, var_names=names, method="tail")
    ess_min = ESS_PER_CHAIN_MIN * posterior.sizes["chain"]
    r_values, bulk_values, high_r, low_bulk, low_tail = [], [], [], [], []
    for name in names:
        labels = _element_names(rhat[name])
        r = np.asarray(rhat[name]).ravel()
        bulk = np.asarray(ess_bulk[name]).ravel()
        tail = np.asarray(ess_tail[name]).ravel()
        r_values.append(r)
        bulk_values.append(bulk)
        high_r += [(r[i], labels[i]) for i in np.flatnonzero(r > R_HAT_MAX)]
        low_bulk += [(bulk[i], labels[i]) for i in np.flatnonzero(bulk < ess_min)]
        low_tail += [(tail[i], labels[i]) for i in np.flatnonzero(tail < ess_min)]
    all_r = np.concatenate(r_values)
    all_bulk = np.concatenate(bulk_values)
    max_r_hat = float(np.nanmax(all_r)) if np.isfinite(all_r).any() else float("nan")
    min_ess_bulk = float(np.nanmin(all_bulk)) if np.isfinite(all_bulk).any() else float("nan")
    for kind, rows, relation, limit, fmt in (
        ("r_hat", sorted(high_r, reverse=True), ">", R_HAT_MAX, "{:.3f}"),
        ("ess_bulk", sorted(low_bulk), "<", ess_min, "{:.0f}"),
        ("ess_tail", sorted(low_tail), "<", ess_min, "{:.0f}"),
    ):
        if rows:
            parts = [f"{label} ({fmt.format(value)})" for value, label in rows]
            limit_text = f"{limit:.2f}" if kind == "r_hat" else f"{limit} ({ESS_PER_CHAIN_MIN} per chain)"
            warnings.append(f"{kind} {relation} {limit_text} for {_listed(parts)}")
    return Diagnostics(divergences, max_r_hat, min_ess_bulk, warnings)


# ---------------------------------------------------------------------------------------------
# fit


def _effects_table(idata, cells: pd.DataFrame, control: str, endpoint: str) -> pd.DataFrame:
    import arviz as az
    import xarray as xr

    effect = idata.posterior["effect"]
    stacked = effect.stack(sample=("chain", "draw"))
    benefit = (effect > 0) if endpoint == "binary" else (effect < 0)
    lower, upper = stacked.quantile(0.025, dim="sample"), stacked.quantile(0.975, dim="sample")
    median = stacked.median(dim="sample")
    mcse_mean = az.mcse(xr.Dataset({"effect": effect}), method="mean")["effect"]
    mcse_benefit = az.mcse(xr.Dataset({"benefit": benefit.astype(float)}), method="mean")["benefit"]
    tallies = cells.set_index(["arm", "group"])
    rows = []
    for arm in effect.coords["arm"].values:
        for group in effect.coords["group"].values:
            at = {"arm": arm, "group": group}
            rows.append(
                {
                    "arm": str(arm),
                    "group": str(group),
                    "n": int(tallies.at[(arm, group), "patients"]),
                    "events": int(tallies.at[(arm, group), "events"]),
                    "n_control": int(tallies.at[(control, group), "patients"]),
                    "events_control": int(tallies.at[(control, group), "events"]),
                    "mean": float(stacked.sel(at).mean()),
                    "sd": float(stacked.sel(at).std(ddof=1)),
                    "lower": float(lower.sel(at)),
                    "upper": float(upper.sel(at)),
                    "mcse_mean": float(mcse_mean.sel(at)),
                    "prob_benefit": float(benefit.sel(at).mean()),
                    "mcse_prob_benefit": float(mcse_benefit.sel(at)),
                    "ratio": float(np.exp(median.sel(at))),
                    "ratio_lower": float(np.exp(lower.sel(at))),
                    "ratio_upper": float(np.exp(upper.sel(at))),
                }
            )
    table = pd.DataFrame(rows)
    # all draws on one side of 0: ArviZ reports an MCSE of 0, which claims too much
    one_sided = ~table["prob_benefit"].between(0.0, 1.0, inclusive="neither")
    table.loc[one_sided, "mcse_prob_benefit"] = np.nan
    return table


def _positive_int(value, name: str, problems: list[Problem], minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        problems.append(Problem(name, f"must be a whole number >= {minimum}", value))


def fit_final_analysis(
    data: pd.DataFrame,
    *,
    arms: Sequence[str],
    groups: Sequence[str],
    control: str | None,
    endpoint: str,
    prior: FinalAnalysisPrior | None = None,
    parameterization: str = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    target_accept: float = 0.9,
    seed: int = 0,
    cores: int = 1,
    progressbar: bool = False,
) -> FinalAnalysis:
    """Fit the arm x group model to one trial's patient-level data with NUTS.

    data: one row per randomized patient, columns ``arm``, ``group`` and ``response`` (binary)
    or ``time`` (months) and ``event`` (survival); other columns are ignored.
    arms, groups: the ordered names (the effects table and the plot follow this order).
    control: the control arm, or None for the first of ``arms``.
    endpoint: ``"binary"`` (effects are log odds ratios) or ``"survival"`` (log hazard ratios).
    prior: the prior scales (:class:`FinalAnalysisPrior`).
    parameterization: how the interactions are sampled: ``"centred"``, ``"non-centred"`` or
    ``"auto"`` (centred for the arms whose every cell is well informed, see the module
    docstring). The model, and so the posterior, is the same; only the sampler's geometry differs.
    draws, tune, chains, target_accept, seed, cores, progressbar: passed to ``pm.sample``; the
    same seed gives the same draws.

    Raises :class:`ConfigError` for bad input. Sampling problems do not raise: they are listed
    in ``FinalAnalysis.warnings``.
    """
    problems: list[Problem] = []
    _positive_int(draws, "draws", problems)
    _positive_int(tune, "tune", problems, minimum=0)
    _positive_int(chains, "chains", problems)
    _positive_int(cores, "cores", problems)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        problems.append(Problem("seed", "must be a whole number >= 0", seed))
    if parameterization not in PARAMETERIZATIONS:
        problems.append(Problem("parameterization", f"must be one of {', '.join(PARAMETERIZATIONS)}", parameterization))
    if not (isinstance(target_accept, (int, float)) and 0 < target_accept < 1):
        problems.append(Problem("target_accept", "must lie strictly between 0 and 1", target_accept))
    try:
        cells = cell_table(data, arms=arms, groups=groups, control=control, endpoint=endpoint)
    except ConfigError as error:
        raise ConfigError(problems + error.problems) from None
    if problems:
        raise ConfigError(problems)
    control_arm = next(iter(arms)) if control is None else control
    prior = FinalAnalysisPrior() if prior is None else prior

    import arviz as az
    import pymc as pm
    import xarray as xr

    model, reference = build_model(
        cells, control=control_arm, endpoint=endpoint, prior=prior, parameterization=parameterization
    )
    with model:
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=seed,
            target_accept=target_accept,
            progressbar=progressbar,
            idata_kwargs={"log_likelihood": True},
            compute_convergence_checks=False,
        )
    shape = (len(arms), len(groups))
    constant = {
        "patients": (("all_arms", "group"), cells["patients"].to_numpy().reshape(shape)),
        "events": (("all_arms", "group"), cells["events"].to_numpy().reshape(shape)),
    }
    if endpoint == "survival":
        constant["exposure"] = (("all_arms", "group"), cells["exposure"].to_numpy().reshape(shape))
    idata.add_groups(constant_data=xr.Dataset(constant, coords={"all_arms": list(arms), "group": list(groups)}))
    idata.posterior.attrs.update(
        {
            "endpoint": endpoint,
            "control": control_arm,
            "reference_group": reference,
            "effect_scale": f"{_SCALE[endpoint]} vs control",
        }
    )

    names = [v for v in MAIN_VARIABLES if v in idata.posterior]
    summary = az.summary(idata, var_names=names, hdi_prob=0.95)
    checks = diagnostics(idata, var_names=names)
    effects = _effects_table(idata, cells, control_arm, endpoint)
    return FinalAnalysis(
        idata=idata,
        summary=summary,
        effects=effects,
        divergences=checks.divergences,
        max_r_hat=checks.max_r_hat,
        min_ess_bulk=checks.min_ess_bulk,
        warnings=checks.warnings,
        endpoint=endpoint,
        control=control_arm,
        reference_group=reference,
        prior=prior,
    )


# ---------------------------------------------------------------------------------------------
# output


def forest_plot(analysis: FinalAnalysis, hdi_prob: float = 0.95) -> matplotlib.figure.Figure:
    """Forest plot of every treatment arm x group effect (``az.plot_forest``, chains combined).

    One row per effect, labelled ``arm | group (n = patients)`` with ``prior only`` for cells
    without patients; thick and thin lines are the interquartile range and the ``hdi_prob``
    highest-density interval. A dashed line marks no effect (0). The x axis is the log odds ratio
    or log hazard ratio versus the control.
    """
    import arviz as az

    n_of = {(r.arm, r.group): r.n for r in analysis.effects.itertuples()}

    def label(arm: str, group: str) -> str:
        n = n_of.get((arm, group), 0)
        return f"{arm} | {group} ({'prior only' if n == 0 else f'n = {n}'})"

    class _CellLabeller(az.labels.BaseLabeller):
        def make_label_flat(self, var_name, sel, isel):
            return label(str(sel.get("arm")), str(sel.get("group")))

    rows = len(analysis.effects)
    longest = max(len(label(a, g)) for a, g in n_of)
    axes = az.plot_forest(
        analysis.idata,
        var_names=["effect"],
        combined=True,
        hdi_prob=hdi_prob,
        labeller=_CellLabeller(),
        textsize=9,
        figsize=(4.0 + 0.075 * longest, 1.0 + 0.35 * rows),
    )
    ax = np.ravel(axes)[0]
    ax.axvline(0.0, color="0.3", linestyle="--", linewidth=1.0)
    ax.set_xlabel(f"{_SCALE[analysis.endpoint]} vs control ({analysis.control})")
    benefit = "> 0" if analysis.endpoint == "binary" else "< 0"
    ax.set_title(f"Effect by arm and group, {hdi_prob:.0%} HDI (benefit {benefit})", fontsize=10)
    figure = ax.figure
    figure.tight_layout()
    return figure


def save_netcdf(analysis: FinalAnalysis, path: str | os.PathLike) -> Path:
    """Write ``analysis.idata`` to NetCDF at ``path`` (a temporary file in the same folder, then
    renamed, so a reader never sees a half-written file). Returns the path; read it back with
    ``arviz.from_netcdf``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        analysis.idata.to_netcdf(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
