"""Figures of simulated trials and of comparisons, for notebooks: the report's figures as functions.

Each function takes the :class:`~platform_sim.api.Results` of :func:`platform_sim.run` or the
:class:`~platform_sim.api.Comparison` of :func:`platform_sim.compare` and returns a
:class:`matplotlib.figure.Figure`. Those that draw one panel take ``ax=``, a matplotlib axes to
draw on (the figure it belongs to is returned), so figures can be laid out side by side::

    import matplotlib.pyplot as plt
    import platform_sim as ps
    from platform_sim import plot

    res = ps.run("pioneer_rar", "pioneer_alternative", n_sims=500)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    plot.arm_metric(res, "p_claimed", ax=left)
    plot.arm_metric(res, "mean_n", ax=right)

Without ``ax=`` a new figure is made on matplotlib's Agg canvas, without pyplot, so drawing changes
no global state; a notebook shows it when it is the cell's last value (``%matplotlib inline``). The
figures are those of the HTML report (:mod:`platform_sim.report.figures`), drawn from the same
tables (:mod:`platform_sim.oc`), so they agree with it and with ``oc.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .glossary import label as _label
from .glossary import short as _short
from .report import build as _build
from .report import decision as _decision
from .report import figures as _figures

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "allocation",
    "arm_metric",
    "claims",
    "claims_by_subgroup",
    "convergence",
    "duration",
    "frontier",
    "paired",
    "sample_size",
    "stopping",
]


# words for the arm-level metrics on an axis
def _need(obj: Any, attribute: str, what: str) -> None:
    if not hasattr(obj, attribute):
        raise TypeError(f"expected {what}, got a {type(obj).__name__}")


def _results(results: Any) -> None:
    _need(results, "trials", "the Results of platform_sim.run")


def _comparison(comparison: Any) -> None:
    _need(comparison, "frontier", "the Comparison of platform_sim.compare")


# --------------------------------------------------------------------------- one design on one scenario


def claims(results: Any, ax: Axes | None = None) -> Figure:
    """The rate at which each arm is claimed effective in each subgroup (value ± MCSE): power where the
    arm truly works there (outlined), a false-positive rate where it is null (hatched)."""
    _results(results)
    return _build.claims_figure(results.truth, results.subgroup_table(), ax=ax)


def arm_metric(results: Any, metric: str = "p_claimed", ax: Axes | None = None) -> Figure:
    """One arm-level operating characteristic per arm (``p_claimed``, ``mean_n``, ``alloc_share``,
    ``p_dropped``... see :mod:`platform_sim.oc`) with its 95% interval; arms that truly work among all
    patients are green, null ones grey."""
    _results(results)
    arms = results.arm_table()
    if metric not in arms.columns:
        known = [c for c in arms.columns if f"{c}_mcse" in arms.columns]
        raise ValueError(f"metric {metric!r}: not an arm-level metric of this run; one of {known}")
    label = f"{_label(metric)}, 95% interval"
    truth = results.truth
    control = truth.arms[truth.control] if truth.control >= 0 else None
    names = [f"{a} (control)" if a == control else a for a in arms.index]
    return _figures.arm_bars(
        arms[metric].to_numpy(float),
        arms[f"{metric}_lower"].to_numpy(float),
        arms[f"{metric}_upper"].to_numpy(float),
        names,
        list(arms["role"]),
        label,
        ax=ax,
    )


def allocation(results: Any) -> Figure:
    """Allocation over the course of the trial: the mean allocation probability after each look and
    the trials reaching it (designs with looks), or each arm's share of the patients per calendar
    period and the platforms still enrolling (platforms). Two panels."""
    _results(results)
    return _build.allocation_figure(results.spec, results.trials)[0]


def sample_size(results: Any, ax: Axes | None = None) -> Figure:
    """The distribution of the patients randomized per simulated trial, with its mean and median."""
    _results(results)
    return _figures.histogram(results.trials.n_randomized, "patients randomized (total)", "Sample size", ax=ax)


def duration(results: Any, ax: Axes | None = None) -> Figure:
    """The distribution of the months from the opening to the last analysis, with its mean and median."""
    _results(results)
    return _figures.histogram(
        results.trials.duration_months, "duration (months)", "Calendar duration", color="tab:orange", ax=ax
    )


def stopping(results: Any) -> Figure:
    """Why and at which look the trials stopped (designs with looks, ± 2 MCSE), or the final status of
    each experimental arm of a platform."""
    _results(results)
    return _build.stopping_figure(results.spec, results.trials)[0]


def convergence(results: Any, metrics: Sequence[str] | None = None) -> Figure:
    """The running mean of trial-level metrics against the number of simulated trials with a ± 2 MCSE
    band: a band still wide at the right calls for more trials. ``metrics``: per-trial values of
    :func:`platform_sim.oc.trial_values` (default: those of the report)."""
    from . import oc

    _results(results)
    values = oc.trial_values(results.trials, results.truth)
    wanted = list(metrics) if metrics is not None else _build.CONVERGENCE
    unknown = [m for m in wanted if m not in values]
    if unknown:
        raise ValueError(f"metrics {unknown}: not trial-level values of this run; one of {sorted(values)}")
    shown, _ = _build._convergence_values(values, wanted)
    return _figures.convergence(shown, {k: _short(k) for k in shown}, _build.PROBABILITIES)


# --------------------------------------------------------------------------- designs compared


def paired(
    comparison: Any,
    reference: str | None = None,
    metrics: Sequence[str] = ("power", "fwer", "p_correct_finding", "cost"),
    ax: Axes | None = None,
) -> Figure:
    """The forest plot of paired differences from the reference design (every other design minus it,
    on the same simulated trials, with 95% intervals: Newcombe's for proportions), one panel per
    metric; ``ax`` draws a single metric."""
    _comparison(comparison)
    fig = _decision.paired_figure(comparison, reference, metrics, ax=ax)
    if fig is None:
        raise ValueError(
            f"no paired differences to draw for metrics {list(metrics)}: a comparison of one design, "
            "or metrics it does not have"
        )
    return fig


def frontier(comparison: Any, scenario: str | None = None, ax: Axes | None = None) -> Figure:
    """Power against FWER across decision thresholds, one panel per alternative scenario (``scenario``:
    that one alone, on ``ax`` when given). Needs a comparison calibrated on a null scenario
    (``null_scenario=``, ``target_fwer=``)."""
    _comparison(comparison)
    if comparison.frontier.empty:
        raise ValueError(
            "no frontier: compare with null_scenario= and target_fwer= (and frontier=True) to draw power against FWER"
        )
    alternatives = list(dict.fromkeys(comparison.frontier.loc[~comparison.frontier["null"].astype(bool), "scenario"]))
    if scenario is not None and scenario not in alternatives:
        raise ValueError(f"scenario {scenario!r}: not an alternative scenario of the frontier; one of {alternatives}")
    if ax is not None and scenario is None:
        if len(alternatives) != 1:
            raise ValueError(f"ax= draws one scenario's panel; name one with scenario= (one of {alternatives})")
        scenario = alternatives[0]
    fig = _decision.frontier_figure(comparison, scenarios=None if scenario is None else [scenario], ax=ax)
    if fig is None:
        raise ValueError("no frontier: the comparison has no alternative scenario")
    return fig


def claims_by_subgroup(comparison: Any, scenario: str | None = None) -> Figure:
    """Who is claimed where on ``scenario`` (default: the first scenario other than the null): one
    panel per design, true biomarker subgroups by treatments, the claim rate with the truth (outlined:
    the treatment works there; hatched: a false-positive rate)."""
    _comparison(comparison)
    scenarios = list(dict.fromkeys(comparison.table["scenario"]))
    if scenario is None:
        scenario = next((s for s in scenarios if s != comparison.null_scenario), scenarios[0])
    if scenario not in scenarios:
        raise ValueError(f"scenario {scenario!r}: not one of the compared scenarios {scenarios}")
    fig = _decision.claims_figure(comparison, scenario)
    if fig is None:
        raise ValueError(f"no claims to draw on {scenario!r}")
    return fig
