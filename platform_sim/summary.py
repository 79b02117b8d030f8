"""Operating characteristics accumulated chunk by chunk, so memory stays flat however many trials run.

Every operating characteristic is a statistic of one per-trial value (a 0/1
outcome, a count, an error) over the simulated trials. A :class:`Summary` keeps,
for each characteristic, only what its estimate and Monte Carlo standard error
need, and two summaries of disjoint sets of trials merge into the summary of
their union:

* ``"p"`` (a proportion): the number of trials with a finite value and the number
  of ones among them; estimate ``k / m``, MCSE ``sqrt(p (1 - p) / m)``;
* ``"mean"``: the count, mean and sum of squared deviations (merged with Chan,
  Golub & LeVeque's pairwise update, 1979); estimate the mean, MCSE ``sd / sqrt(m)``;
* ``"dist"`` (a non-negative integer count such as a sample size): the moments
  above and the histogram of values, from which the mean, the standard deviation
  (MCSE ``s / sqrt(2 (m - 1))``) and exact quantiles (numpy's linear interpolation,
  order-statistic MCSE) follow;
* ``"rmse"``: the moments of the squared error; estimate ``sqrt(mean(e^2))``, MCSE
  ``sqrt(var(e^2) / m) / (2 rmse)`` (delta method).

Non-finite values do not count (a mean over the trials where an arm entered is a
value that is NaN elsewhere). A histogram grows with the largest value seen, so
its size is bounded by the design's maximum sample size, not by the number of trials.

Summaries are merged in chunk order by every execution backend, so the floating
point results are the same whichever backend and number of workers ran the chunks.
They serialise to JSON exactly (``repr`` of a float round-trips).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["KINDS", "QUANTILES", "Summary"]

KINDS = ("p", "mean", "dist", "rmse")
#: Quantiles reported for ``"dist"`` values (column suffixes q05, q25, q50, q75, q95).
QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)
_Z = 1.96

Key = tuple  # (table, row, column); row is a string or a tuple of strings


def qname(q: float) -> str:
    return f"q{round(q * 100):02d}"


class _Moments:
    __slots__ = ("m", "mean", "m2")

    def __init__(self, m: int = 0, mean: float = 0.0, m2: float = 0.0):
        self.m, self.mean, self.m2 = m, mean, m2

    @classmethod
    def of(cls, x: np.ndarray) -> "_Moments":
        if x.size == 0:
            return cls()
        mean = float(x.mean())
        return cls(int(x.size), mean, float(((x - mean) ** 2).sum()))

    def merge(self, other: "_Moments") -> None:
        if other.m == 0:
            return
        if self.m == 0:
            self.m, self.mean, self.m2 = other.m, other.mean, other.m2
            return
        m = self.m + other.m
        delta = other.mean - self.mean
        self.mean = self.mean + delta * other.m / m
        self.m2 = self.m2 + other.m2 + delta * delta * self.m * other.m / m
        self.m = m

    def sd(self) -> float:
        return math.sqrt(max(self.m2, 0.0) / (self.m - 1)) if self.m >= 2 else math.nan

    def state(self) -> list:
        return [self.m, self.mean, self.m2]


class _Stat:
    """The accumulated state of one characteristic (see the module docstring for the kinds)."""

    __slots__ = ("kind", "k", "moments", "hist")

    def __init__(self, kind: str):
        if kind not in KINDS:
            raise ValueError(f"unknown summary kind {kind!r}; expected one of {KINDS}")
        self.kind = kind
        self.k = 0  # ones, for proportions
        self.moments = _Moments()
        self.hist = np.zeros(0, dtype=np.int64)

    def add(self, values) -> None:
        x = np.asarray(values, dtype=float).ravel()
        x = x[np.isfinite(x)]
        if self.kind == "p":
            if ((x != 0) & (x != 1)).any():
                raise ValueError("a proportion's per-trial values must be 0 or 1")
            part = _Moments(int(x.size))
            self.k += int(np.count_nonzero(x))
        elif self.kind == "rmse":
            part = _Moments.of(x * x)
        else:
            part = _Moments.of(x)
            if self.kind == "dist" and x.size:
                if (x < 0).any() or (x != np.round(x)).any():
                    raise ValueError("a 'dist' value must be a non-negative integer count")
                self._add_hist(np.bincount(x.astype(np.int64)))
        if self.kind == "p":
            self.moments.m += part.m
        else:
            self.moments.merge(part)

    def _add_hist(self, counts: np.ndarray) -> None:
        if counts.size > self.hist.size:
            self.hist = np.concatenate([self.hist, np.zeros(counts.size - self.hist.size, dtype=np.int64)])
        self.hist[: counts.size] += counts

    def merge(self, other: "_Stat") -> None:
        if other.kind != self.kind:
            raise ValueError(f"cannot merge a {other.kind!r} summary into a {self.kind!r} one")
        self.k += other.k
        if self.kind == "p":
            self.moments.m += other.moments.m
        else:
            self.moments.merge(other.moments)
        if other.hist.size:
            self._add_hist(other.hist)

    # ---------------------------------------------------------------- estimates

    def proportion(self) -> tuple[float, float]:
        m = self.moments.m
        if m == 0:
            return math.nan, math.nan
        p = self.k / m
        return p, math.sqrt(p * (1.0 - p) / m)

    def mean(self) -> tuple[float, float]:
        mo = self.moments
        if mo.m == 0:
            return math.nan, math.nan
        return mo.mean, (mo.sd() / math.sqrt(mo.m) if mo.m >= 2 else math.nan)

    def sd(self) -> tuple[float, float]:
        mo = self.moments
        if mo.m < 2:
            return math.nan, math.nan
        s = mo.sd()
        return s, s / math.sqrt(2.0 * (mo.m - 1))

    def rmse(self) -> tuple[float, float]:
        mo = self.moments
        if mo.m == 0:
            return math.nan, math.nan
        r = math.sqrt(max(mo.mean, 0.0))
        if mo.m < 2:
            return r, math.nan
        v = max(mo.m2, 0.0) / (mo.m - 1)
        if v == 0.0:
            return r, 0.0
        return r, math.sqrt(v / mo.m) / (2.0 * r)

    def _order_stat(self, cum: np.ndarray, i: int) -> float:
        """The i-th smallest value (0-based) from the cumulative histogram."""
        return float(np.searchsorted(cum, i, side="right"))

    def quantile(self, q: float) -> tuple[float, float]:
        m = self.moments.m
        if m == 0:
            return math.nan, math.nan
        cum = np.cumsum(self.hist)
        h = (m - 1) * q
        lo = math.floor(h)
        a, b = self._order_stat(cum, lo), self._order_stat(cum, min(lo + 1, m - 1))
        value = a + (b - a) * (h - lo)
        half = _Z * math.sqrt(m * q * (1.0 - q))
        r_lo = min(max(math.floor(q * m - half), 1), m)
        r_hi = min(max(math.ceil(q * m + half), 1), m)
        return value, (self._order_stat(cum, r_hi - 1) - self._order_stat(cum, r_lo - 1)) / (2.0 * _Z)

    def columns(self, name: str) -> dict[str, float]:
        """This characteristic's columns in a table: ``name`` and ``name_mcse`` (for ``"dist"``:
        ``mean_<name>``, ``sd_<name>`` and ``<name>_q05`` ... each with its ``_mcse``)."""
        out: dict[str, float] = {}

        def put(col: str, vm: tuple[float, float]) -> None:
            out[col], out[f"{col}_mcse"] = vm

        if self.kind == "p":
            put(name, self.proportion())
        elif self.kind == "mean":
            put(name, self.mean())
        elif self.kind == "rmse":
            put(name, self.rmse())
        else:
            put(f"mean_{name}", self.mean())
            put(f"sd_{name}", self.sd())
            for q in QUANTILES:
                put(f"{name}_{qname(q)}", self.quantile(q))
        return out

    def state(self) -> list:
        """``[kind, ones, [m, mean, m2], [values, counts]]``: the histogram as its non-zero entries."""
        values = np.flatnonzero(self.hist)
        return [self.kind, self.k, self.moments.state(), [values.tolist(), self.hist[values].tolist()]]

    @classmethod
    def from_state(cls, state: list) -> "_Stat":
        kind, k, moments, (values, counts) = state
        stat = cls(kind)
        stat.k = int(k)
        stat.moments = _Moments(int(moments[0]), float(moments[1]), float(moments[2]))
        values = np.asarray(values, dtype=np.int64)
        stat.hist = np.zeros(int(values.max()) + 1 if values.size else 0, dtype=np.int64)
        stat.hist[values] = np.asarray(counts, dtype=np.int64)
        return stat


def _row_key(row) -> str | tuple:
    return tuple(row) if isinstance(row, list) else row


class Summary:
    """Operating characteristics of a set of simulated trials, as mergeable sufficient statistics.

    ``add(n_trials, entries)`` takes ``(table, row, column, kind, values)`` entries, one per
    characteristic, with ``values`` the per-trial values of the new trials; :meth:`merge`
    folds in the summary of other trials; :meth:`table` gives one table's rows (insertion
    order) and columns with their MCSE.
    """

    def __init__(self) -> None:
        self.n_trials = 0
        self._stats: dict[Key, _Stat] = {}

    def add(self, n_trials: int, entries: Iterable[tuple]) -> "Summary":
        for table, row, column, kind, values in entries:
            key = (table, row, column)
            stat = self._stats.get(key)
            if stat is None:
                stat = self._stats[key] = _Stat(kind)
            stat.add(values)
        self.n_trials += int(n_trials)
        return self

    def merge(self, other: "Summary") -> "Summary":
        for key, stat in other._stats.items():
            mine = self._stats.get(key)
            if mine is None:
                mine = self._stats[key] = _Stat(stat.kind)
            mine.merge(stat)
        self.n_trials += other.n_trials
        return self

    def stat(self, table: str, row, column: str) -> _Stat:
        return self._stats[(table, row, column)]

    def rows(self, table: str) -> list:
        seen: dict = {}
        for t, row, _ in self._stats:
            if t == table:
                seen.setdefault(row, None)
        return list(seen)

    def table(self, table: str) -> pd.DataFrame:
        """One row per row key of ``table`` (insertion order), its characteristics as columns."""
        rows: dict = {}
        for (t, row, column), stat in self._stats.items():
            if t == table:
                rows.setdefault(row, {}).update(stat.columns(column))
        index = list(rows)
        if index and isinstance(index[0], tuple):
            index = pd.MultiIndex.from_tuples(index)
        return pd.DataFrame(list(rows.values()), index=index)

    # ---------------------------------------------------------------- serialisation

    def to_dict(self) -> dict:
        stats = [[t, list(row) if isinstance(row, tuple) else row, c, s.state()]
                 for (t, row, c), s in self._stats.items()]
        return {"n_trials": self.n_trials, "stats": stats}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "Summary":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict) -> "Summary":
        out = cls()
        out.n_trials = int(data["n_trials"])
        for t, row, c, state in data["stats"]:
            out._stats[(t, _row_key(row), c)] = _Stat.from_state(state)
        return out

    def __eq__(self, other) -> bool:
        return isinstance(other, Summary) and self.to_json() == other.to_json()
