"""Operating characteristics accumulated chunk by chunk, exactly, so memory stays flat and the numbers
do not depend on how the trials were cut into chunks.

Every operating characteristic is a statistic of one per-trial value (a 0/1
outcome, a count, an error) over the simulated trials. A :class:`Summary` keeps,
for each characteristic, only what its estimate and Monte Carlo standard error
need, and two summaries of disjoint sets of trials merge into the summary of
their union:

* ``"p"`` (a proportion): the number of trials with a finite value and the number
  of ones among them; estimate ``k / m``, MCSE ``sqrt(p (1 - p) / m)``;
* ``"dist"`` (a non-negative integer count such as a sample size): the histogram of
  values, from which the mean, the standard deviation (MCSE ``s / sqrt(2 (m - 1))``)
  and exact quantiles (numpy's linear interpolation, order-statistic MCSE) follow;
* ``"mean"``: the count, the sum and the sum of squares of the values; estimate the
  mean, MCSE ``sd / sqrt(m)``;
* ``"rmse"``: the same of the squared errors; estimate ``sqrt(mean(e^2))``, MCSE
  ``sqrt(var(e^2) / m) / (2 rmse)`` (delta method).

Counts and histograms are integers, so they merge exactly. Sums of floating-point
values are made exact too: the trials are grouped in *blocks* of :data:`BLOCK`
consecutive trial indices; a block's sums are computed with correct rounding
(:func:`math.fsum`) over its values in trial order once all its trials are in, and
are added to totals kept as exact integers (multiples of 2^-1074). A block cut
between two chunks waits, value by value, until its other trials arrive. The
results therefore depend only on the trials' values, never on the chunk size, the
order chunks finish in, the backend or the number of workers: ``summary.csv`` is
byte-identical however a run was cut.

Non-finite values do not count (a mean over the trials where an arm entered is a
value that is NaN elsewhere). A histogram grows with the largest value seen, so
its size is bounded by the design's maximum sample size, not by the number of
trials. Summaries serialise to JSON exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas loads with the first table asked for
    import pandas as pd

__all__ = ["BLOCK", "KINDS", "QUANTILES", "Summary"]

KINDS = ("p", "mean", "dist", "rmse")
#: Quantiles reported for ``"dist"`` values (column suffixes q05, q25, q50, q75, q95).
QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)
#: Trials per block of exactly summed values.
BLOCK = 256
_Z = 1.96
_SCALE = 1074  # every finite double is an integer multiple of 2**-1074

Key = tuple  # (table, row, column); row is a string or a tuple of strings


def qname(q: float) -> str:
    return f"q{round(q * 100):02d}"


def _exact(x: float) -> int:
    """``x`` as an exact integer multiple of 2**-1074."""
    num, den = x.as_integer_ratio()
    return num * ((1 << _SCALE) // den)


def _value(total: int) -> Fraction:
    return Fraction(total, 1 << _SCALE)


class _Stat:
    """The accumulated state of one characteristic (see the module docstring for the kinds)."""

    __slots__ = ("kind", "m", "k", "s1", "s2", "hist", "pending")

    def __init__(self, kind: str):
        if kind not in KINDS:
            raise ValueError(f"unknown summary kind {kind!r}; expected one of {KINDS}")
        self.kind = kind
        self.m = 0  # finite values counted (complete blocks only, for means)
        self.k = 0  # ones, for proportions
        self.s1 = 0  # exact sum of the values (means) or of the squared errors (rmse)
        self.s2 = 0  # exact sum of their squares
        self.hist = np.zeros(0, dtype=np.int64)
        self.pending: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # block -> (trials, values), incomplete

    # ---------------------------------------------------------------- adding values

    def add(self, trials: np.ndarray, values) -> None:
        x = np.asarray(values, dtype=float).ravel()
        if x.size != trials.size:
            raise ValueError(f"{x.size} values for {trials.size} trials")
        finite = np.isfinite(x)
        if self.kind == "p":
            v = x[finite]
            if ((v != 0) & (v != 1)).any():
                raise ValueError("a proportion's per-trial values must be 0 or 1")
            self.m += int(v.size)
            self.k += int(np.count_nonzero(v))
            return
        if self.kind == "dist":
            v = x[finite]
            if v.size:
                if (v < 0).any() or (v != np.round(v)).any():
                    raise ValueError("a 'dist' value must be a non-negative integer count")
                self._add_hist(np.bincount(v.astype(np.int64)))
            self.m += int(v.size)
            return
        if self.kind == "rmse":
            x = x * x
        blocks = trials // BLOCK
        first, last = int(blocks.min(initial=0)), int(blocks.max(initial=-1))
        if first == last and trials.size == BLOCK and first not in self.pending:  # one whole block
            self._fold(trials, x)
            return
        for b in np.unique(blocks):
            inside = blocks == b
            self._hold(int(b), trials[inside], x[inside])

    def _hold(self, b: int, trials: np.ndarray, x: np.ndarray) -> None:
        """Keep the values of block ``b`` until the block is complete, then fold it."""
        if b in self.pending:
            held_t, held_x = self.pending.pop(b)
            trials, x = np.concatenate([held_t, trials]), np.concatenate([held_x, x])
        if trials.size == BLOCK:
            self._fold(trials, x)
        else:
            self.pending[b] = (trials, x)

    def _fold(self, trials: np.ndarray, x: np.ndarray) -> None:
        """Add a complete block's exact sums to the totals."""
        m, s1, s2 = self._block_sums(trials, x)
        self.m += m
        self.s1 += s1
        self.s2 += s2

    @staticmethod
    def _block_sums(trials: np.ndarray, x: np.ndarray) -> tuple[int, int, int]:
        """The count, sum and sum of squares of a block's finite values, each correctly rounded over the
        values in trial order, as exact integers."""
        values = x[np.argsort(trials, kind="stable")]
        values = values[np.isfinite(values)]
        if not values.size:
            return 0, 0, 0
        return int(values.size), _exact(math.fsum(values.tolist())), _exact(math.fsum((values * values).tolist()))

    def _add_hist(self, counts: np.ndarray) -> None:
        if counts.size > self.hist.size:
            self.hist = np.concatenate([self.hist, np.zeros(counts.size - self.hist.size, dtype=np.int64)])
        self.hist[: counts.size] += counts

    def merge(self, other: "_Stat") -> None:
        if other.kind != self.kind:
            raise ValueError(f"cannot merge a {other.kind!r} summary into a {self.kind!r} one")
        self.m += other.m
        self.k += other.k
        self.s1 += other.s1
        self.s2 += other.s2
        if other.hist.size:
            self._add_hist(other.hist)
        for b, (trials, x) in other.pending.items():
            self._hold(b, trials, x)

    # ---------------------------------------------------------------- exact totals

    def _totals(self) -> tuple[int, Fraction, Fraction]:
        """(m, sum, sum of squares) over every value, incomplete blocks included (exact)."""
        if self.kind == "dist":
            values = np.arange(self.hist.size, dtype=object)
            counts = self.hist.astype(object)
            return (
                int(self.hist.sum()),
                Fraction(int((values * counts).sum())),
                Fraction(int((values * values * counts).sum())),
            )
        m, s1, s2 = self.m, self.s1, self.s2
        for b in sorted(self.pending):
            bm, b1, b2 = self._block_sums(*self.pending[b])
            m, s1, s2 = m + bm, s1 + b1, s2 + b2
        return m, _value(s1), _value(s2)

    # ---------------------------------------------------------------- estimates

    def proportion(self) -> tuple[float, float]:
        if self.m == 0:
            return math.nan, math.nan
        p = self.k / self.m
        return p, math.sqrt(p * (1.0 - p) / self.m)

    def _mean_var(self) -> tuple[int, float, float]:
        m, s1, s2 = self._totals()
        if m == 0:
            return 0, math.nan, math.nan
        mean = s1 / m
        var = max((s2 - s1 * mean) / (m - 1), Fraction(0)) if m >= 2 else math.nan
        return m, float(mean), float(var)

    def mean(self) -> tuple[float, float]:
        m, mean, var = self._mean_var()
        if m == 0:
            return math.nan, math.nan
        return mean, (math.sqrt(var / m) if m >= 2 else math.nan)

    def sd(self) -> tuple[float, float]:
        m, _, var = self._mean_var()
        if m < 2:
            return math.nan, math.nan
        s = math.sqrt(var)
        return s, s / math.sqrt(2.0 * (m - 1))

    def rmse(self) -> tuple[float, float]:
        m, mean, var = self._mean_var()  # of the squared errors
        if m == 0:
            return math.nan, math.nan
        r = math.sqrt(max(mean, 0.0))
        if m < 2:
            return r, math.nan
        if var == 0.0:
            return r, 0.0
        return r, math.sqrt(var / m) / (2.0 * r)

    def _order_stat(self, cum: np.ndarray, i: int) -> float:
        """The i-th smallest value (0-based) from the cumulative histogram."""
        return float(np.searchsorted(cum, i, side="right"))

    def quantile(self, q: float) -> tuple[float, float]:
        m = self.m
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

    def estimates(self, name: str) -> dict[str, tuple[float, float]]:
        """This characteristic's estimates with their MCSE: ``name`` (for ``"dist"``: ``mean_<name>``,
        ``sd_<name>`` and ``<name>_q05`` ...)."""
        if self.kind == "p":
            return {name: self.proportion()}
        if self.kind == "mean":
            return {name: self.mean()}
        if self.kind == "rmse":
            return {name: self.rmse()}
        out = {f"mean_{name}": self.mean(), f"sd_{name}": self.sd()}
        for q in QUANTILES:
            out[f"{name}_{qname(q)}"] = self.quantile(q)
        return out

    def columns(self, name: str) -> dict[str, float]:
        """:meth:`estimates` as table columns: each estimate and its ``_mcse``."""
        out: dict[str, float] = {}
        for col, (value, mcse) in self.estimates(name).items():
            out[col], out[f"{col}_mcse"] = value, mcse
        return out

    def count(self) -> int:
        """Trials with a finite value."""
        return self._totals()[0] if self.kind in ("mean", "rmse") else self.m

    # ---------------------------------------------------------------- serialisation

    def state(self) -> list:
        """``[kind, m, k, s1, s2, [values, counts], {block: [[trials], [values]]}]`` (histogram
        as its non-zero entries, NaN as null)."""
        values = np.flatnonzero(self.hist)
        pending = {
            str(b): [t.tolist(), [v if math.isfinite(v) else None for v in x.tolist()]]
            for b, (t, x) in self.pending.items()
        }
        return [
            self.kind,
            self.m,
            self.k,
            str(self.s1),
            str(self.s2),
            [values.tolist(), self.hist[values].tolist()],
            pending,
        ]

    @classmethod
    def from_state(cls, state: list) -> "_Stat":
        kind, m, k, s1, s2, (values, counts), pending = state
        stat = cls(kind)
        stat.m, stat.k, stat.s1, stat.s2 = int(m), int(k), int(s1), int(s2)
        values = np.asarray(values, dtype=np.int64)
        stat.hist = np.zeros(int(values.max()) + 1 if values.size else 0, dtype=np.int64)
        stat.hist[values] = np.asarray(counts, dtype=np.int64)
        stat.pending = {
            int(b): (np.asarray(ts, dtype=np.int64), np.array([math.nan if v is None else v for v in xs], dtype=float))
            for b, (ts, xs) in pending.items()
        }
        return stat


def _row_key(row) -> str | tuple:
    return tuple(row) if isinstance(row, list) else row


class Summary:
    """Operating characteristics of a set of simulated trials, as mergeable sufficient statistics.

    ``add(trials, entries)`` takes the indices of the new trials in the run and ``(table, row,
    column, kind, values)`` entries, one per characteristic, with ``values`` their per-trial values
    (one per trial); :meth:`merge` folds in the summary of other trials; :meth:`table` gives one
    table's rows (insertion order) and columns with their MCSE.
    """

    def __init__(self) -> None:
        self.n_trials = 0
        self._stats: dict[Key, _Stat] = {}

    def add(self, trials, entries: Iterable[tuple]) -> "Summary":
        trials = np.asarray(trials, dtype=np.int64).ravel()
        for table, row, column, kind, values in entries:
            key = (table, row, column)
            stat = self._stats.get(key)
            if stat is None:
                stat = self._stats[key] = _Stat(kind)
            stat.add(trials, values)
        self.n_trials += int(trials.size)
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

    def keys(self) -> list[Key]:
        """Every (table, row, column) in insertion order."""
        return list(self._stats)

    def rows(self, table: str) -> list:
        seen: dict = {}
        for t, row, _ in self._stats:
            if t == table:
                seen.setdefault(row, None)
        return list(seen)

    def table(self, table: str) -> pd.DataFrame:
        """One row per row key of ``table`` (insertion order), its characteristics as columns."""
        import pandas as pd

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
        stats = [
            [t, list(row) if isinstance(row, tuple) else row, c, s.state()] for (t, row, c), s in self._stats.items()
        ]
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
