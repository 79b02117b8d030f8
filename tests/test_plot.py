"""platform_sim.plot: the report's figures one by one, drawn from the same tables, on axes of one's own."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import platform_sim as ps
from platform_sim import plot
from platform_sim.glossary import label


@pytest.fixture(scope="module")
def rar():
    return ps.run("pioneer_rar", "pioneer_alternative", n_sims=80, seed=2)


@pytest.fixture(scope="module")
def platform():
    return ps.run("pioneer_platform", "pioneer_alternative", n_sims=20, seed=1)


def _own_axes(n: int = 1):
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, n, squeeze=False).ravel()


def test_every_results_figure(rar, platform):
    for res in (rar, platform):
        for draw in (
            plot.claims,
            plot.arm_metric,
            plot.allocation,
            plot.sample_size,
            plot.duration,
            plot.stopping,
            plot.convergence,
        ):
            fig = draw(res)
            assert isinstance(fig, Figure), draw.__name__
            fig.canvas.draw()  # renders without error


def test_arm_metric_draws_the_tables_intervals_on_the_given_axes(rar):
    fig, (left, right) = _own_axes(2)
    assert plot.arm_metric(rar, "p_claimed", ax=left) is fig
    assert plot.arm_metric(rar, "mean_n", ax=right) is fig
    arms = rar.arm_table()
    bars = list(left.patches)
    assert [b.get_width() for b in bars] == pytest.approx(arms["p_claimed"].fillna(0).to_list())
    # the error bars end at the table's 95% interval
    segments = [c for c in left.collections if c.get_segments()][0].get_segments()
    ends = np.array([[s[0][0], s[1][0]] for s in segments])
    np.testing.assert_allclose(ends[:, 0], arms["p_claimed_lower"].fillna(0).to_numpy(), atol=1e-12)
    np.testing.assert_allclose(ends[:, 1], arms["p_claimed_upper"].fillna(0).to_numpy(), atol=1e-12)
    labels = [t.get_text() for t in left.get_yticklabels()]
    assert labels[0] == f"{rar.design.control} (control)"
    with pytest.raises(ValueError, match="not an arm-level metric"):
        plot.arm_metric(rar, "power")


def test_single_panel_figures_take_ax(rar):
    fig, axes = _own_axes(3)
    assert plot.claims(rar, ax=axes[0]) is fig
    assert plot.sample_size(rar, ax=axes[1]) is fig
    assert plot.duration(rar, ax=axes[2]) is fig
    assert axes[1].get_xlabel() == "patients randomized (total)"
    fig.canvas.draw()


def test_results_plot_names_the_figures(rar):
    fig, (ax,) = _own_axes(1)
    assert rar.plot("arms", metric="alloc_share", ax=ax) is fig
    assert ax.get_xlabel() == f"{label('alloc_share')}, 95% interval"  # the glossary's words
    assert isinstance(rar.plot("stopping"), Figure)
    with pytest.raises(ValueError, match="unknown; one of claims, arms"):
        rar.plot("histogram")


def test_convergence_names_unknown_metrics(rar):
    with pytest.raises(ValueError, match="not trial-level values"):
        plot.convergence(rar, ["no_such_metric"])
    fig = plot.convergence(rar, ["power", "n_randomized"])
    assert len([a for a in fig.axes if a.get_visible()]) == 2


def test_comparison_figures_and_wrong_inputs(rar):
    cmp = ps.compare(["allcomer_fixed", "allcomer_rar"], ["allcomer_effect"], n_sims=40, seed=1)
    fig, (ax,) = _own_axes(1)
    assert plot.paired(cmp, metrics=["power"], ax=ax) is fig
    assert isinstance(plot.claims_by_subgroup(cmp), Figure)
    with pytest.raises(ValueError, match="one metric"):
        plot.paired(cmp, ax=ax)
    with pytest.raises(ValueError, match="not one of the compared scenarios"):
        plot.claims_by_subgroup(cmp, "pioneer_null")
    with pytest.raises(TypeError, match="Comparison"):
        plot.paired(rar)
    with pytest.raises(TypeError, match="Results"):
        plot.claims(cmp)
