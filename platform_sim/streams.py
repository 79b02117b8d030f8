"""Random numbers keyed by (seed, trial, quantity, index): exact common random numbers.

Every random number the simulator draws is a uniform

    U(seed; family, quantity, trial, i)

the ``i``-th value of a named *quantity* (``"arrival"``, ``"marker:kras"``,
``"outcome:dcr12:docetaxel"``, ``"randomization:arm"``...) of simulated trial
``trial``, in one of four *families*: patients, outcomes, assessment timing and
randomization. It is computed, not drawn from a sequence: a keyed counter-based
generator, Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers:
as easy as 1, 2, 3", SC11, 2011), maps the 128-bit counter
``(i // 2, quantity id, trial, family)`` under a 64-bit key derived from the
master seed to 128 random bits, two uniforms. Hence:

* a trial's numbers depend only on ``(seed, trial index)``: not on the chunk that
  runs it, the other trials of the batch, the number of workers or the backend;
* the same virtual patient (same trial, same position) gets the same
  characteristics, potential outcomes and randomization uniform in every design
  run with the same seed: comparisons are paired trial by trial;
* a quantity can be generated for any subset of trials and any range of
  positions, in any order, with the same values (patients can be generated block
  by block as the looks advance, and nothing for trials that have stopped).

Uniforms are ``(m + 1/2) / 2**53`` for a 53-bit integer ``m``: strictly inside
(0, 1), so ``-log(u)`` and the inverse normal distribution function are always
finite. The quantity id is the CRC-32 of the quantity's name.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np
from numba import njit

from . import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)

__all__ = [
    "OUTCOMES",
    "PATIENTS",
    "RANDOMIZATION",
    "TIMING",
    "Streams",
    "TrialStreams",
    "fill_row",
    "philox4x32",
    "quantity_id",
    "uniform_at",
]

# Families of random numbers (the last word of the counter).
PATIENTS = 1  # arrival, profile, screening and assay results
OUTCOMES = 2  # potential outcomes under every treatment, dropout
TIMING = 3  # assessment timing and outcome delays
RANDOMIZATION = 4  # arms, randomization blocks, routing between sub-studies


@njit(cache=True, inline="always")
def _philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32 with 10 rounds on one counter (c0..c3) and key (k0, k1), all uint32 held in uint64."""
    for r in range(10):
        if r > 0:
            k0 = (k0 + np.uint64(0x9E3779B9)) & np.uint64(0xFFFFFFFF)
            k1 = (k1 + np.uint64(0xBB67AE85)) & np.uint64(0xFFFFFFFF)
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & np.uint64(0xFFFFFFFF)
        hi1, lo1 = p1 >> np.uint64(32), p1 & np.uint64(0xFFFFFFFF)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


@njit(cache=True, inline="always")
def _pair_bits(counter, qid, trial, family, k0, k1):
    """The two 53-bit integers of one Philox call: positions 2 * counter and 2 * counter + 1 of
    quantity ``qid`` for ``trial`` (its low 32 bits), all uint64."""
    w0, w1, w2, w3 = _philox(counter, qid, trial & np.uint64(0xFFFFFFFF), family, k0, k1)
    m0 = ((w0 << np.uint64(21)) ^ (w1 >> np.uint64(11))) & np.uint64(0x1FFFFFFFFFFFFF)
    m1 = ((w2 << np.uint64(21)) ^ (w3 >> np.uint64(11))) & np.uint64(0x1FFFFFFFFFFFFF)
    return m0, m1


@njit(cache=True, inline="always")
def _unit(m):
    """The uniform (m + 1/2) / 2**53 of a 53-bit integer: strictly inside (0, 1)."""
    return (np.float64(m) + 0.5) * 1.1102230246251565e-16


@njit(cache=True)
def philox4x32(counter, key):
    """Philox4x32-10 of one counter (4 uint32) under one key (2 uint32): 4 uint32 (for known-answer tests)."""
    c = counter.astype(np.uint64)
    k = key.astype(np.uint64)
    r0, r1, r2, r3 = _philox(c[0], c[1], c[2], c[3], k[0], k[1])
    out = np.empty(4, dtype=np.uint32)
    out[0], out[1], out[2], out[3] = r0, r1, r2, r3
    return out


@njit(cache=True)
def _fill(out, k0, k1, family, qid, trials, start):
    """out[r, j] = U(family, qid, trials[r], start + j) for an (R, n) float array.

    Each Philox call gives the two uniforms of one counter (positions 2c and 2c + 1). The pairs
    covering ``start .. start + n - 1`` are computed into a scratch row by a branch-free loop (which
    the compiler vectorizes: about 4 times faster than choosing the half inside the loop), then the
    wanted positions are copied out; the values are the same either way."""
    n_rows, n = out.shape
    fam = np.uint64(family)
    q = np.uint64(qid)
    first = start >> 1
    n_pairs = ((start + n - 1) >> 1) - first + 1
    offset = start - 2 * first
    if n_pairs < 8 <= n_rows:
        # few positions for many trials (a look's batch of patients): the same loop with the
        # trials inside, so that it is the one the compiler vectorizes
        by_pair = np.empty((2 * n_pairs, n_rows))
        for p in range(n_pairs):
            c0 = np.uint64(first + p)
            for r in range(n_rows):
                m0, m1 = _pair_bits(c0, q, np.uint64(trials[r]), fam, k0, k1)
                by_pair[2 * p, r] = _unit(m0)
                by_pair[2 * p + 1, r] = _unit(m1)
        for r in range(n_rows):
            for j in range(n):
                out[r, j] = by_pair[offset + j, r]
        return
    pairs = np.empty(2 * n_pairs)
    for r in range(n_rows):
        fill_row(out[r], pairs, k0, k1, fam, q, trials[r], start)


@njit(cache=True, inline="always")
def fill_row(out_row, pairs, k0, k1, family, qid, trial, start):
    """out_row[j] = U(family, qid, trial, start + j): one trial's run of a quantity, as :func:`_fill`
    writes it (``pairs``: scratch of at least ``len(out_row) + 2`` values; ``k0``, ``k1``, ``family``
    and ``qid`` uint64). For compiled code that uses each trial's uniforms as soon as they are
    drawn, so that a block's uniforms never need to be held all at once."""
    n = out_row.shape[0]
    if n == 0:
        return
    first = start >> 1
    n_pairs = ((start + n - 1) >> 1) - first + 1
    offset = start - 2 * first
    t = np.uint64(trial)
    for p in range(n_pairs):
        m0, m1 = _pair_bits(np.uint64(first + p), qid, t, family, k0, k1)
        pairs[2 * p] = _unit(m0)
        pairs[2 * p + 1] = _unit(m1)
    for j in range(n):
        out_row[j] = pairs[offset + j]


@njit(cache=True, inline="always")
def uniform_at(k0, k1, family, qid, trial, position):
    """U(family, qid, trial, position) under the key (k0, k1), all uint64: the value :func:`_fill`
    writes for that trial and position, from the one Philox call whose pair holds it (for
    compiled code that needs a few scattered positions of a quantity, not a run of them)."""
    m0, m1 = _pair_bits(position >> np.uint64(1), qid, trial, family, k0, k1)
    m = m1 if position & np.uint64(1) else m0  # a select, not a branch: loops over positions vectorize
    return _unit(m)


@njit(cache=True)
def _fill_at(out, k0, k1, family, qids, which, trials, positions):
    """out[i] = U(family, qids[which[i]], trials[i], positions[i]) (1-D arrays): scattered positions,
    one Philox call each. The quantities are looked up first, so that the Philox loop reads its
    arguments in order and the compiler vectorizes it (about 4 times faster than looking them up
    inside it)."""
    fam = np.uint64(family)
    n = out.size
    q = np.empty(n, dtype=np.uint64)
    for i in range(n):
        q[i] = qids[which[i]]
    t = trials.astype(np.uint64)
    p = positions.astype(np.uint64)
    for i in range(n):
        out[i] = uniform_at(k0, k1, fam, q[i], t[i], p[i])


def _integers(name: str, values) -> np.ndarray:
    """``values`` as a 1-D int64 array; a clear error for values that are not integers."""
    array = np.asarray(values)
    if array.size and array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got {array.dtype}")
    return array.astype(np.int64, copy=False).reshape(-1)


def quantity_id(quantity: str | int) -> int:
    """The 32-bit id of a named quantity (its CRC-32); an integer is taken as it is."""
    if isinstance(quantity, (int, np.integer)):
        if not 0 <= int(quantity) < 2**32:
            raise ValueError(f"a quantity id must be a 32-bit unsigned integer, got {quantity}")
        return int(quantity)
    return _name_id(quantity)


@functools.lru_cache(maxsize=4096)
def _name_id(name: str) -> int:
    # a run asks for the same few hundred names at every block and look
    return zlib.crc32(name.encode())


def _checked_trials(trials) -> np.ndarray:
    trials = np.ascontiguousarray(trials, dtype=np.int64).reshape(-1)
    if trials.size and (trials.min() < 0 or trials.max() >= 2**32):
        raise ValueError("trial indices must lie in [0, 2**32)")
    return trials


def _checked_out(out: np.ndarray | None, start: int, n: int, n_trials: int) -> np.ndarray:
    if start < 0 or n < 0:
        raise ValueError(f"positions must be non-negative, got start={start}, n={n}")
    if out is None:
        return np.empty((n_trials, int(n)), dtype=np.float64)
    if out.shape != (n_trials, int(n)) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {(n_trials, int(n))}")
    return out


@dataclass(frozen=True)
class Streams:
    """All the random numbers of a run with master seed ``seed`` (see the module docstring)."""

    seed: int

    @property
    def key(self) -> tuple[int, int]:
        """The Philox key: two 32-bit words from ``numpy.random.SeedSequence(seed)``."""
        words = np.random.SeedSequence(self.seed).generate_state(2, np.uint32)
        return int(words[0]), int(words[1])

    def uniform(
        self, family: int, quantity: str | int, trials, start: int, n: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """``(len(trials), n)`` float64 uniforms in (0, 1): positions ``start .. start + n - 1`` of
        ``quantity`` for each trial index in ``trials`` (written into ``out``, a C-contiguous
        float64 array of that shape, when given)."""
        trials = _checked_trials(trials)
        return self._uniform(family, quantity, trials, start, _checked_out(out, start, n, trials.size))

    def _uniform(self, family: int, quantity: str | int, trials: np.ndarray, start: int, out: np.ndarray) -> np.ndarray:
        """:meth:`uniform` of checked trials (C-contiguous int64 in range) into a checked ``out``."""
        if out.size:
            k0, k1 = self._key
            _fill(out, np.uint64(k0), np.uint64(k1), family, quantity_id(quantity), trials, int(start))
        return out

    @property
    def _key(self) -> tuple[int, int]:
        cached = self.__dict__.get("_cached_key")
        if cached is None:
            cached = self.key
            object.__setattr__(self, "_cached_key", cached)
        return cached

    def for_trials(self, trials) -> TrialStreams:
        """The streams of the given trial indices, as one object to pass around."""
        return TrialStreams(self, trials)


@dataclass(frozen=True)
class TrialStreams:
    """The random numbers of a batch of trials (``trials``: their indices in the run)."""

    streams: Streams
    trials: np.ndarray

    def __post_init__(self):
        # checked once here, so that the batch's many draws need not check them again
        object.__setattr__(self, "trials", _checked_trials(self.trials))

    @property
    def n_trials(self) -> int:
        return int(self.trials.size)

    @property
    def key(self) -> tuple[int, int]:
        """The run's Philox key (:attr:`Streams.key`), for compiled code that calls :func:`uniform_at`
        or :func:`fill_row`."""
        return self.streams._key

    def uniform(
        self, family: int, quantity: str | int, start: int, n: int, rows=None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """``(T, n)`` uniforms of ``quantity`` at positions ``start ..`` for every trial of the batch
        (or for the batch rows ``rows``), written into ``out`` when given (see :meth:`Streams.uniform`)."""
        trials = self.trials if rows is None else np.ascontiguousarray(self.trials[rows]).reshape(-1)
        return self.streams._uniform(family, quantity, trials, start, _checked_out(out, start, n, trials.size))

    def uniform_at(self, family: int, quantity, rows, positions, which=None) -> np.ndarray:
        """(n,) uniforms of the batch rows ``rows`` at ``positions`` (both (n,)): the values
        :meth:`uniform` gives there. ``quantity``: one quantity, or a list of them with ``which`` (n,)
        saying which one each value is of."""
        rows, positions = _integers("rows", rows), _integers("positions", positions)
        if rows.size != positions.size:
            raise ValueError(f"one position per row expected, got {rows.size} rows and {positions.size} positions")
        if rows.size and not 0 <= rows.min() <= rows.max() < self.n_trials:
            raise ValueError(f"rows must be batch rows, in [0, {self.n_trials})")
        quantities: list[str | int]
        if isinstance(quantity, (str, int, np.integer)):
            if which is not None:
                raise ValueError("which= picks among a list of quantities; one quantity was given")
            quantities, which = (
                [quantity if isinstance(quantity, str) else int(quantity)],
                np.zeros(rows.size, np.int64),
            )
        else:
            quantities = list(quantity)
            if which is None:
                raise ValueError("which quantity each value is of: give which= with a list of quantities")
            which = _integers("which", which)
            if which.size != rows.size or (which.size and not 0 <= which.min() <= which.max() < len(quantities)):
                raise ValueError(f"which must give one index below {len(quantities)} per row")
        if positions.size and positions.min() < 0:
            raise ValueError("positions must be non-negative")
        out = np.empty(positions.size)
        if out.size:
            k0, k1 = self.streams._key
            qids = np.array([quantity_id(q) for q in quantities], dtype=np.uint64)
            _fill_at(out, np.uint64(k0), np.uint64(k1), family, qids, which, self.trials[rows], positions)
        return out

    def exponential(self, family: int, quantity: str | int, start: int, n: int, rows=None) -> np.ndarray:
        """Standard exponential variates ``-log(U)``."""
        return -np.log(self.uniform(family, quantity, start, n, rows))

    def normal(self, family: int, quantity: str | int, start: int, n: int, rows=None) -> np.ndarray:
        """Standard normal variates by the inverse distribution function."""
        from scipy.special import ndtri

        return ndtri(self.uniform(family, quantity, start, n, rows))

    def subset(self, rows) -> TrialStreams:
        """The streams of some rows of the batch."""
        return TrialStreams(self.streams, self.trials[rows])
