"""Figures of the operating-characteristics report, drawn with matplotlib.

Every function takes plain arrays or tables and returns a :class:`matplotlib.figure.Figure`;
:func:`png_base64` renders one to a base64 PNG for embedding in the page. Figures are
built with the object API on the Agg canvas, never through pyplot and without
``matplotlib.use``, so drawing a report needs no display and changes no global state:
a notebook that builds a report keeps its own backend.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

from ..glossary import label

WIDTH = 9.0  # inches; at DPI this is the width of every figure in pixels / 100
DPI = 100
Z_BAND = 2.0  # error bars and bands are ± this many Monte Carlo standard errors


def _figure(height: float, width: float = WIDTH):
    """A new figure on the Agg canvas with constrained layout (no overlapping labels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _figure_for(ax, height: float, width: float = WIDTH):
    """``(figure, axes)``: the figure of ``ax`` when one is given (the caller's layout), else a new
    figure of the given size with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = _figure(height, width)
    return fig, fig.subplots(1, 1)


def png_base64(fig) -> str:
    """The figure as a base64-encoded PNG (no timestamp metadata, so the bytes are reproducible)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=2 * DPI, metadata={"Software": None})  # 2x: sharp on high-density screens
    return base64.b64encode(buf.getvalue()).decode("ascii")


def arm_colors(arm_names: list[str]) -> dict[str, tuple]:
    """One colour per arm, the same in every figure of a report."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if len(arm_names) <= 10 else colormaps["tab20"]
    return {a: cmap(i % cmap.N) for i, a in enumerate(arm_names)}


def _label_arm(name: str, control: str | None) -> str:
    return f"{name} (control)" if name == control else name


def _nanmean_columns(x: np.ndarray) -> np.ndarray:
    """Mean over the leading axis ignoring NaN; NaN where every value is NaN (no warning)."""
    finite = np.isfinite(x)
    count = finite.sum(axis=0)
    total = np.where(finite, x, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# --------------------------------------------------------------------------- 1. allocation


def allocation_by_look(
    alloc_history: np.ndarray, stop_look: np.ndarray, randomized_n: list[int], arm_names: list[str], control: str | None
):
    """Look-based designs: the mean allocation probability of each arm between looks (over the
    trials still running) as a step function of the patients randomized, and the fraction of
    trials that reached each look."""
    hist = np.asarray(alloc_history, dtype=float)  # (T, J, K)
    looks = np.asarray(randomized_n, dtype=float)
    n_looks = looks.size
    mean = _nanmean_columns(hist)  # (J, K): in force after each look
    reached = np.array([(np.asarray(stop_look) >= j).mean() for j in range(n_looks)])
    colors = arm_colors(arm_names)
    fig = _figure(5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    if n_looks > 1:
        edges = np.append(looks[:-1], looks[-1])
        for k, arm in enumerate(arm_names):
            y = np.append(mean[:-1, k], mean[-2, k])
            top.step(edges, y, where="post", color=colors[arm], lw=2, label=_label_arm(arm, control))
            top.plot(looks[:-1], mean[:-1, k], "o", color=colors[arm], ms=4)
    top.set_ylabel("mean allocation probability")
    top.set_ylim(
        0, max(0.05, float(np.nanmax(mean[:-1])) * 1.15) if n_looks > 1 and np.isfinite(mean[:-1]).any() else 1.0
    )
    top.set_title("Allocation after each look (mean over the trials still running)")
    top.grid(alpha=0.3)
    if n_looks > 1:  # one look: nothing is drawn above, so there is nothing to name
        top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    width = float(np.min(np.diff(looks))) * 0.6 if n_looks > 1 else max(looks[0] * 0.2, 1.0)
    bottom.bar(looks, reached, width=width, color="0.55")
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("trials reaching\nthe look")
    bottom.set_xlabel("patients randomized at the look")
    bottom.set_xticks(looks)
    bottom.tick_params(axis="x", labelrotation=45 if n_looks > 8 else 0)
    bottom.grid(alpha=0.3, axis="y")
    return fig


def allocation_by_period(
    n_period: np.ndarray, enrolment_end: np.ndarray, period_months: float, arm_names: list[str], control: str | None
):
    """Platforms over calendar time: each arm's share of the patients randomized in each calendar
    period (pooled over the simulated platforms), and the fraction of platforms still enrolling."""
    counts = np.asarray(n_period, dtype=float)  # (T, B, K)
    per_period = counts.sum(axis=0)  # (B, K)
    total = per_period.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total[:, None] > 0, per_period / np.maximum(total[:, None], 1), np.nan)
    n_periods = counts.shape[1]
    starts = np.arange(n_periods) * period_months
    mids = starts + period_months / 2
    enrolling = np.array([(np.asarray(enrolment_end) > s).mean() for s in starts])
    colors = arm_colors(arm_names)
    fig = _figure(5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    for k, arm in enumerate(arm_names):
        top.plot(mids, share[:, k], "-o", ms=3.5, lw=2, color=colors[arm], label=_label_arm(arm, control))
    top.set_ylabel("share of patients randomized")
    top.set_ylim(0, max(0.05, float(np.nanmax(share)) * 1.15) if np.isfinite(share).any() else 1.0)
    top.set_title(f"Allocation over calendar time ({period_months:g}-month periods, pooled over platforms)")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    bottom.bar(mids, enrolling, width=period_months * 0.8, color="0.55")
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("platforms still\nenrolling")
    bottom.set_xlabel("months since the platform opened")
    bottom.grid(alpha=0.3, axis="y")
    return fig


# --------------------------------------------------------------------------- 2. sample size and duration


def _histogram(ax, x: np.ndarray, color: str, xlabel: str, title: str) -> None:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(xlabel)
        return
    values, counts = np.unique(x, return_counts=True)
    if values.size <= 30:  # few distinct values (a trial stops at a look): one bar per value
        gap = float(np.min(np.diff(values))) if values.size > 1 else max(abs(float(values[0])) * 0.1, 1.0)
        ax.bar(values, counts / x.size, width=gap * 0.7, color=color, alpha=0.85)
    else:
        ax.hist(
            x,
            bins=min(40, max(10, int(math.sqrt(x.size)))),
            weights=np.full(x.size, 1.0 / x.size),
            color=color,
            alpha=0.85,
            edgecolor="white",
            lw=0.5,
        )
    mean = float(x.mean())
    ax.axvline(mean, color="black", lw=1.5, ls="--", label=f"mean {mean:,.1f}")
    ax.axvline(float(np.median(x)), color="black", lw=1.0, ls=":", label=f"median {float(np.median(x)):,.1f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of simulated trials")
    ax.set_title(title)
    ax.legend(fontsize=9, frameon=False)
    ax.grid(alpha=0.3, axis="y")


def histogram(x: np.ndarray, xlabel: str, title: str, color: str = "tab:blue", ax=None):
    """The distribution of a per-trial value over the simulated trials (a bar per value when there are
    few, else a histogram), with its mean (dashed) and median (dotted); on ``ax`` when given."""
    fig, ax = _figure_for(ax, 3.8, WIDTH / 2 + 0.5)
    _histogram(ax, x, color, xlabel, title)
    return fig


def sample_size_and_duration(n_total: np.ndarray, duration_months: np.ndarray | None):
    """Histograms of the total sample size and of the calendar duration, with mean and median."""
    fig = _figure(3.8)
    if duration_months is None:
        ax = fig.subplots(1, 1)
        _histogram(ax, n_total, "tab:blue", "patients randomized (total)", "Sample size")
    else:
        left, right = fig.subplots(1, 2)
        _histogram(left, n_total, "tab:blue", "patients randomized (total)", "Sample size")
        _histogram(right, duration_months, "tab:orange", "duration (months)", "Calendar duration")
    return fig


# --------------------------------------------------------------------------- 3. stopping reasons


def stopping_by_reason(
    stop_reason: np.ndarray, stop_look: np.ndarray, reason_names: tuple[str, ...], randomized_n: list[int]
):
    """Look-based designs: the fraction of trials stopping for each reason (± 2 MCSE) and at each look."""
    reason = np.asarray(stop_reason)
    T = reason.size
    p = np.array([(reason == code).mean() for code in range(len(reason_names))])
    se = np.sqrt(p * (1 - p) / T)
    looks = np.asarray(stop_look)
    n_looks = len(randomized_n)
    p_look = np.array([(looks == j).mean() for j in range(n_looks)])
    se_look = np.sqrt(p_look * (1 - p_look) / T)
    fig = _figure(3.8)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.4])
    left.bar(range(len(reason_names)), p, yerr=Z_BAND * se, capsize=4, color="tab:purple", alpha=0.85)
    left.set_xticks(
        range(len(reason_names)),
        [n.replace("_", " ") for n in reason_names],
        rotation=30,
        ha="right",
        rotation_mode="anchor",
    )
    left.set_ylabel("fraction of simulated trials")
    left.set_ylim(0, 1.05)
    left.set_title("Why the trial stopped")
    left.grid(alpha=0.3, axis="y")
    for i, v in enumerate(p):
        left.text(i, min(v + Z_BAND * se[i] + 0.02, 1.0), f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    right.bar(range(n_looks), p_look, yerr=Z_BAND * se_look, capsize=3, color="tab:gray", alpha=0.85)
    right.set_xticks(range(n_looks), [str(n) for n in randomized_n], rotation=45 if n_looks > 8 else 0)
    right.set_xlabel("look (patients randomized at the look)")
    right.set_ylabel("fraction of simulated trials")
    right.set_ylim(0, 1.05)
    right.set_title("When the trial stopped")
    right.grid(alpha=0.3, axis="y")
    return fig


STATUS_COLORS = {
    "graduated": "tab:green",
    "dropped": "tab:red",
    "inconclusive": "tab:olive",
    "full": "tab:cyan",
    "open": "tab:blue",
    "waiting": "tab:gray",
    "not_entered": "0.8",
    "control": "tab:brown",
}


def platform_status(
    status: np.ndarray, status_names: tuple[str, ...], arm_names: list[str], control: str | None, ax=None
):
    """Platforms: the final status of each experimental arm as stacked horizontal bars (fraction of
    simulated platforms); on ``ax`` when given."""
    status = np.asarray(status)
    arms = [a for a in arm_names if a != control]
    idx = [arm_names.index(a) for a in arms]
    shown = [s for s in range(len(status_names)) if (status[:, idx] == s).any()]
    fig, ax = _figure_for(ax, 0.9 + 0.45 * len(arms) + 1.0)
    left = np.zeros(len(arms))
    for s in shown:
        frac = np.array([(status[:, k] == s).mean() for k in idx])
        name = status_names[s]
        ax.barh(
            range(len(arms)),
            frac,
            left=left,
            color=STATUS_COLORS.get(name, None),
            label=label(name, "status"),
            edgecolor="white",
            lw=0.5,
        )
        for i, (x0, w) in enumerate(zip(left, frac)):
            if w >= 0.08:
                ax.text(x0 + w / 2, i, f"{w:.2f}", ha="center", va="center", fontsize=8, color="black")
        left += frac
    ax.set_yticks(range(len(arms)), arms)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of simulated platforms")
    ax.set_title("Final status of each experimental arm")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return fig


# --------------------------------------------------------------------------- 4. heat map


TRUTH_MARK = {"works": "effective", "null": "null", "grey": "grey zone"}


def declared_heatmap(
    value: np.ndarray,
    mcse: np.ndarray,
    truth: np.ndarray,
    row_labels: list[str],
    col_labels: list[str],
    value_label: str,
    title: str,
    ax=None,
):
    """Arms (rows) x strata or signatures (columns): the probability of being declared effective,
    annotated with value ± MCSE and the truth of the cell; truly effective cells are outlined in
    black, truly null cells hatched. ``truth`` holds 'works', 'null', 'grey', 'control' or '' (the
    arm is not compared there); cells with NaN value are drawn blank. On ``ax`` when given (the
    colour bar takes room from it and the legend goes below it)."""
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch, Rectangle

    value = np.asarray(value, dtype=float)
    n_rows, n_cols = value.shape
    height = 1.3 + 0.55 * n_rows
    width = min(WIDTH + 2, 3.2 + 1.45 * n_cols)
    own = ax is None
    fig, ax = _figure_for(ax, max(height, 3.0), width=max(width, 6.5))
    masked = np.ma.masked_invalid(value)
    from matplotlib import colormaps

    cmap = colormaps["Blues"].with_extremes(bad="0.93")
    image = ax.imshow(masked, cmap=cmap, norm=Normalize(0, 1), aspect="auto")
    for i in range(n_rows):
        for j in range(n_cols):
            t = truth[i, j]
            v = value[i, j]
            if not np.isfinite(v):
                text = "control" if t == "control" else "—"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="0.35")
                continue
            se = mcse[i, j]
            text = f"{v:.2f}" + (f" ± {se:.2f}" if np.isfinite(se) and se > 0 else "")
            mark = TRUTH_MARK.get(t)
            if mark:
                text += f"\n{mark}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if v > 0.6 else "black")
            if t == "works":
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=2.5))
            elif t == "null":
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="tab:red", lw=0, hatch="///", alpha=0.45)
                )
    long = max(len(c) for c in col_labels) > 8
    ax.set_xticks(
        range(n_cols), col_labels, rotation=30 if long else 0, ha="right" if long else "center", rotation_mode="anchor"
    )
    ax.set_yticks(range(n_rows), row_labels)
    ax.set_xticks(np.arange(-0.5, n_cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n_rows, 1), minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_title(title)
    cbar = fig.colorbar(image, ax=ax, shrink=0.9)
    cbar.set_label(value_label)
    handles = [
        Patch(facecolor="white", edgecolor="black", lw=2.5, label="truly effective (power)"),
        Patch(facecolor="white", edgecolor="tab:red", hatch="///", label="truly null (false positive)"),
    ]
    if own:
        fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    else:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    return fig


def arm_bars(
    value: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    arm_names: list[str],
    roles: list[str],
    xlabel: str,
    title: str = "",
    ax=None,
):
    """One horizontal bar per arm with its 95% interval; arms that truly work are green, null ones grey,
    the others (grey zone, control) light blue. On ``ax`` when given."""
    value = np.asarray(value, dtype=float)
    fig, ax = _figure_for(ax, 1.0 + 0.45 * len(arm_names), WIDTH / 2 + 1)
    colors = [ROLE_COLORS.get(r, "tab:blue") for r in roles]
    y = np.arange(len(arm_names))
    lo = np.where(np.isfinite(lower), value - np.asarray(lower, dtype=float), 0.0)
    hi = np.where(np.isfinite(upper), np.asarray(upper, dtype=float) - value, 0.0)
    ax.barh(y, np.nan_to_num(value), xerr=[np.maximum(lo, 0), np.maximum(hi, 0)], color=colors, capsize=3, alpha=0.9)
    ax.set_yticks(y, arm_names)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return fig


#: Bar colours of an arm by its truth among all patients.
ROLE_COLORS = {"works": "tab:green", "null": "0.6", "grey zone": "tab:olive", "control": "tab:brown"}


# --------------------------------------------------------------------------- 5. convergence


def running_mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Running mean and standard error of the finite values of ``x`` in trial order: (n, mean, se)
    after each of the n = 1, 2, ... finite values (se is NaN until there are two)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = np.arange(1, x.size + 1, dtype=float)
    shift = x[0] if x.size else 0.0  # centre first: cumulative sums of squares lose precision far from 0
    c = x - shift
    s1 = np.cumsum(c)
    s2 = np.cumsum(c * c)
    mean = s1 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(n > 1, (s2 - n * mean**2) / np.maximum(n - 1, 1), np.nan)
    se = np.sqrt(np.maximum(var, 0.0) / n)
    se[n < 2] = np.nan
    return n, mean + shift, se


def convergence(values: dict[str, np.ndarray], labels: dict[str, str], probabilities: set[str] = frozenset()):
    """One panel per metric: the running mean over the simulated trials with a ± 2 MCSE band
    (running standard error), and the final estimate as a dashed line. The first few trials
    (at most 5%) are left out so that their noise does not set the scale; metrics named in
    ``probabilities`` are clipped to [0, 1]."""
    names = list(values)
    n_cols = 2 if len(names) > 1 else 1
    n_rows = math.ceil(len(names) / n_cols)
    fig = _figure(2.5 * n_rows + 0.3)
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for ax, name in zip(axes, names):
        n, mean, se = running_mean_se(values[name])
        skip = min(50, n.size // 20)
        n, mean, se = n[skip:], mean[skip:], se[skip:]
        if n.size == 0:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        else:
            lo, hi = mean - Z_BAND * np.nan_to_num(se), mean + Z_BAND * np.nan_to_num(se)
            if name in probabilities:
                lo, hi = np.clip(lo, 0, 1), np.clip(hi, 0, 1)
            ax.fill_between(n, lo, hi, color="tab:blue", alpha=0.2, lw=0, label=f"± {Z_BAND:g} MCSE")
            ax.plot(n, mean, color="tab:blue", lw=1.5, label="running mean")
            ax.axhline(mean[-1], color="black", ls="--", lw=1, label=f"final {mean[-1]:.3g}")
            ax.legend(fontsize=8, frameon=False, loc="best")
        ax.set_title(labels.get(name, name), fontsize=10)
        ax.set_xlabel("simulated trials")
        ax.set_ylabel("running mean", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    return fig


# --------------------------------------------------------------------------- 6. comparison


def comparison_bars(table, metrics: list[str], labels: dict[str, str]):
    """One panel per trial-level metric: bars per scenario (groups) and design (colours) with
    ± 2 MCSE error bars. ``table`` is the tidy comparison table (rows with level 'trial')."""
    t = table[table["level"] == "trial"]
    designs = list(dict.fromkeys(t["design"]))
    scenarios = list(dict.fromkeys(t["scenario"]))
    colors = arm_colors(designs)
    n_cols = 2 if len(metrics) > 1 else 1
    n_rows = math.ceil(len(metrics) / n_cols)
    fig = _figure(2.9 * n_rows + 0.6)
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    width = 0.8 / max(len(designs), 1)
    rotate = max(len(s) for s in scenarios) > 12 or len(scenarios) > 3
    for ax, metric in zip(axes, metrics):
        part = t[t["metric"] == metric]
        for i, d in enumerate(designs):
            rows = part[part["design"] == d].set_index("scenario")
            v = np.array([rows["value"].get(s, np.nan) for s in scenarios], dtype=float)
            se = np.array([rows["mcse"].get(s, np.nan) for s in scenarios], dtype=float)
            x = np.arange(len(scenarios)) - 0.4 + width * (i + 0.5)
            ax.bar(
                x,
                np.nan_to_num(v),
                width=width * 0.95,
                yerr=np.where(np.isfinite(se), Z_BAND * se, 0),
                capsize=3,
                color=colors[d],
                label=d,
            )
            for xi, vi in zip(x, v):
                if not np.isfinite(vi):
                    ax.text(xi, 0, "NA", ha="center", va="bottom", fontsize=7, color="0.4")
        ax.set_xticks(
            range(len(scenarios)),
            scenarios,
            rotation=30 if rotate else 0,
            ha="right" if rotate else "center",
            rotation_mode="anchor",
        )
        ax.set_title(labels.get(metric, metric), fontsize=10)
        ax.set_ylabel(metric.replace("_", " "), fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        names,
        loc="outside lower center",
        ncol=min(len(designs), 4),
        fontsize=9,
        frameon=False,
        title=f"design (error bars: ± {Z_BAND:g} MCSE)",
    )
    return fig


# --------------------------------------------------------------------------- 7. decision report


def frontier(
    table,
    labels: dict[str, str] | None = None,
    target: float | None = None,
    scenarios: list[str] | None = None,
    ax=None,
):
    """Power against FWER per design, across decision thresholds: one panel per alternative scenario.
    ``table`` is a comparison's frontier table (design, setting, threshold, scenario, null, metric,
    value, lower, upper); each point pairs the FWER on the null scenario with the power on the
    panel's scenario at one threshold, with 95% intervals in both directions, and the calibrated
    threshold is drawn larger; ``target``, the FWER the designs were calibrated to, is a dashed line.
    ``scenarios``: the panels (default: every alternative scenario); ``ax``: draw the one scenario
    given there."""
    labels = labels or {}
    null = table[table["null"].astype(bool) & (table["metric"] == "fwer")]
    alt = table[~table["null"].astype(bool) & (table["metric"] == "power")]
    scenarios = list(dict.fromkeys(alt["scenario"])) if scenarios is None else list(scenarios)
    if ax is not None and len(scenarios) != 1:
        raise ValueError(f"ax= draws one scenario's panel; name one of {list(dict.fromkeys(alt['scenario']))}")
    designs = list(dict.fromkeys(table["design"]))
    colors = arm_colors(designs)
    n_cols = min(3, max(len(scenarios), 1))
    n_rows = max(math.ceil(len(scenarios) / n_cols), 1)
    given = ax is not None
    if given:
        fig, axes = ax.figure, np.array([ax])
    else:
        fig = _figure(2.8 * n_rows + 0.9)
        axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for panel, scenario in zip(axes, scenarios):
        ax = panel
        for d in designs:
            x = null[null["design"] == d].set_index("threshold")
            y = alt[(alt["design"] == d) & (alt["scenario"] == scenario)].set_index("threshold")
            thresholds = sorted(set(x.index) & set(y.index))
            if not thresholds:
                continue
            fx, fy = x.loc[thresholds], y.loc[thresholds]
            order = np.argsort(fx["value"].to_numpy())
            xs, ys = fx["value"].to_numpy()[order], fy["value"].to_numpy()[order]
            ax.errorbar(
                xs,
                ys,
                xerr=[xs - fx["lower"].to_numpy()[order], fx["upper"].to_numpy()[order] - xs],
                yerr=[ys - fy["lower"].to_numpy()[order], fy["upper"].to_numpy()[order] - ys],
                color=colors[d],
                marker="o",
                ms=3,
                lw=1.2,
                elinewidth=0.6,
                capsize=1.5,
                label=d,
            )
            calibrated = fx["setting"] == "calibrated"
            if calibrated.any():
                ax.plot(
                    fx["value"][calibrated],
                    fy["value"][calibrated.to_numpy()],
                    marker="*",
                    ms=11,
                    color=colors[d],
                    markeredgecolor="black",
                    lw=0,
                )
        if target is not None:
            ax.axvline(target, color="0.4", lw=0.8, ls="--")
        ax.set_title(labels.get(scenario, scenario), fontsize=9)
        ax.set_xlabel("FWER on the null scenario", fontsize=8)
        ax.set_ylabel("power", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    for extra in axes[len(scenarios) :]:
        extra.set_visible(False)
    handles, names = axes[0].get_legend_handles_labels()
    title = "design (★ the calibrated threshold; bars: 95% intervals" + (
        "; dashed: the target FWER)" if target is not None else ")"
    )
    if given:
        axes[0].legend(handles, names, fontsize=8, frameon=False, title=title, title_fontsize=8, loc="lower right")
    else:
        fig.legend(
            handles,
            names,
            loc="outside lower center",
            ncol=min(len(designs), 4),
            fontsize=8,
            frameon=False,
            title=title,
        )
    return fig


def paired_differences(pairs, metrics: list[str], reference: str, labels: dict[str, str] | None = None, ax=None):
    """A forest plot of paired differences from the reference design: one panel per metric, one
    row per scenario x other design, the difference with its 95% interval (common random numbers).
    ``pairs`` has scenario, metric, design, diff, lower, upper (the other design minus the reference).
    ``ax``: draw the one metric given there."""
    labels = labels or {}
    scenarios = list(dict.fromkeys(pairs["scenario"]))
    designs = [d for d in dict.fromkeys(pairs["design"]) if d != reference]
    colors = arm_colors([reference] + designs)
    rows = [(s, d) for s in scenarios for d in designs]
    given = ax is not None
    if given:
        if len(metrics) != 1:
            raise ValueError(f"ax= draws one metric's panel; got {list(metrics)}")
        fig, axes = ax.figure, np.array([ax])
    else:
        fig = _figure(1.6 + 0.3 * max(len(rows), 2), width=WIDTH + 1)
        axes = np.atleast_1d(fig.subplots(1, len(metrics), squeeze=False, sharey=True)).ravel()
    y = np.arange(len(rows))[::-1]
    for panel, metric in zip(axes, metrics):
        ax = panel
        part = pairs[pairs["metric"] == metric].set_index(["scenario", "design"])
        for yi, key in zip(y, rows):
            if key not in part.index:
                continue
            r = part.loc[key]
            if not np.isfinite(r["diff"]):
                continue
            lo = r["diff"] - r["lower"] if np.isfinite(r["lower"]) else 0
            hi = r["upper"] - r["diff"] if np.isfinite(r["upper"]) else 0
            ax.errorbar(r["diff"], yi, xerr=[[lo], [hi]], fmt="o", ms=4, color=colors[key[1]], capsize=2)
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_title(labels.get(metric, metric), fontsize=9)
        ax.grid(alpha=0.3, axis="x")
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(y, [f"{s}: {d}" for s, d in rows], fontsize=8)
    heading = f"Paired difference from {reference} (95% interval, common random numbers)"
    if given:
        axes[0].set_title(f"{labels.get(metrics[0], metrics[0])}: difference from {reference}", fontsize=9)
    else:
        fig.suptitle(heading, fontsize=10)
    return fig


def subgroup_label(name: str) -> str:
    """A short label of a yardstick subgroup: ``trop2_nmr=positive & atm=negative`` -> ``trop2_nmr+ atm−``."""
    parts = []
    for part in name.split(" & "):
        marker, _, level = part.partition("=")
        parts.append(f"{marker}+" if level == "positive" else f"{marker}−" if level == "negative" else part)
    return " ".join(parts)


def claims_heatmap(cells, truth, designs: list[str], scenario: str):
    """One panel per design: true subgroups (rows) by treatments (columns), the rate at which the
    design claims the treatment effective in the subgroup, with the yardstick's truth (outlined: the
    treatment works there, the rate is power; hatched: it is null there, the rate is a false-positive
    rate). ``cells``: the comparison's rows of level 'subgroup' and metric 'p_claimed' for the scenario;
    ``truth``: the yardstick rows."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch, Rectangle

    t = truth[truth["scenario"] == scenario]
    treatments = list(dict.fromkeys(t["treatment"]))
    subgroups = list(dict.fromkeys(t["subgroup"]))
    role = {(r.treatment, r.subgroup): r.role for r in t.itertuples()}
    c = cells.set_index(["treatment", "subgroup", "design"])["value"]
    n_rows, n_cols = len(subgroups), len(treatments)
    fig = _figure(1.6 + 0.42 * n_rows, width=min(WIDTH + 4, 2.6 + len(designs) * (0.55 * n_cols + 0.3)))
    axes = np.atleast_1d(fig.subplots(1, len(designs), squeeze=False, sharey=True)).ravel()
    cmap = colormaps["Blues"].with_extremes(bad="0.93")
    image = None
    for ax, d in zip(axes, designs):
        value = np.full((n_rows, n_cols), np.nan)
        for i, sub in enumerate(subgroups):
            for j, tr in enumerate(treatments):
                if (tr, sub, d) in c.index:
                    value[i, j] = float(c.loc[(tr, sub, d)])
        image = ax.imshow(np.ma.masked_invalid(value), cmap=cmap, norm=Normalize(0, 1), aspect="auto")
        for i, sub in enumerate(subgroups):
            for j, tr in enumerate(treatments):
                v = value[i, j]
                if np.isfinite(v):
                    ax.text(
                        j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.6 else "black"
                    )
                r = role.get((tr, sub))
                if r == "works":
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=2))
                elif r == "null":
                    ax.add_patch(
                        Rectangle(
                            (j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="tab:red", lw=0, hatch="///", alpha=0.4
                        )
                    )
        ax.set_xticks(range(n_cols), treatments, rotation=40, ha="right", rotation_mode="anchor", fontsize=7)
        ax.set_yticks(range(n_rows), [subgroup_label(sg) for sg in subgroups], fontsize=7)
        ax.set_title(d, fontsize=8)
        ax.set_xticks(np.arange(-0.5, n_cols, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, n_rows, 1), minor=True)
        ax.grid(which="minor", color="white", lw=1)
        ax.tick_params(which="minor", length=0)
    if image is not None:
        cbar = fig.colorbar(image, ax=list(axes), shrink=0.8)
        cbar.set_label(label("p_claimed"), fontsize=8)
    handles = [
        Patch(facecolor="white", edgecolor="black", lw=2, label="works there: the rate is power"),
        Patch(facecolor="white", edgecolor="tab:red", hatch="///", label="null there: a false-positive rate"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"Claims by treatment and true subgroup: {scenario}", fontsize=10)
    return fig


__all__ = [
    "ROLE_COLORS",
    "allocation_by_look",
    "arm_bars",
    "histogram",
    "claims_heatmap",
    "subgroup_label",
    "allocation_by_period",
    "comparison_bars",
    "convergence",
    "declared_heatmap",
    "frontier",
    "paired_differences",
    "platform_status",
    "png_base64",
    "running_mean_se",
    "sample_size_and_duration",
    "stopping_by_reason",
]
