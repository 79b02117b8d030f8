"""Sorting for the compiled kernels: a stable merge sort of values and a stable merge argsort.

No ``@njit(cache=True)`` kernel of the package calls ``np.sort``, ``np.argsort`` or an array's
``.sort()`` / ``.argsort()``; they call :func:`sort_values` and :func:`sort_order` instead
(tests/test_sorting.py checks every kernel's source). numba compiles numpy's sorts as quicksort
helpers named by a counter local to the process that compiled them, so two cached kernels compiled
in different processes can hold helpers of the same name for different comparisons (a sort of
values, an argsort), and a process that loads both from the kernel cache calls one in place of the
other and crashes. The functions here are ordinary module-level kernels: their compiled names come
from this module and their own names, so a cached copy can only stand for itself.

Both sorts are stable bottom-up merge sorts (short runs sorted by insertion first), O(n log n) in
every case, and order NaN after every number, as numpy does:

* :func:`sort_values` returns the same array as ``np.sort`` (equal numbers are the same number;
  only 0.0 and -0.0, which compare equal, keep their input order);
* :func:`sort_order` returns ``np.argsort(values, kind="stable")``: tied values keep their input
  order, where numba's ``np.argsort`` (a quicksort) leaves tied indices in an order of its own.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)

#: Length of the runs sorted by insertion before the merge passes.
_RUN = 16


@njit(cache=True)
def _after(a, b):
    """True when value a sorts strictly after value b (NaN after every number, NaNs tied)."""
    return a > b or (a != a and b == b)


@njit(cache=True)
def _merge_pass(key, idx, key_out, idx_out, n, width, with_index):
    """Merge each pair of consecutive sorted runs of ``width`` in key[:n] (and idx[:n] alongside
    when with_index) into key_out / idx_out; on a tie the left run's value comes first."""
    for lo in range(0, n, 2 * width):
        mid = min(lo + width, n)
        hi = min(lo + 2 * width, n)
        i = lo
        j = mid
        for k in range(lo, hi):
            if i < mid and (j >= hi or not _after(key[i], key[j])):
                key_out[k] = key[i]
                if with_index:
                    idx_out[k] = idx[i]
                i += 1
            else:
                key_out[k] = key[j]
                if with_index:
                    idx_out[k] = idx[j]
                j += 1


@njit(cache=True)
def _merge_sort(key, idx, with_index):
    """Sort key (n,) float64 in place, stably, carrying idx (n,) int64 along when with_index."""
    n = key.shape[0]
    for lo in range(0, n, _RUN):
        hi = min(lo + _RUN, n)
        for p in range(lo + 1, hi):
            x = key[p]
            ix = idx[p] if with_index else 0
            q = p
            while q > lo and _after(key[q - 1], x):
                key[q] = key[q - 1]
                if with_index:
                    idx[q] = idx[q - 1]
                q -= 1
            key[q] = x
            if with_index:
                idx[q] = ix
    if n <= _RUN:
        return
    key_buf = np.empty(n)
    idx_buf = np.empty(n if with_index else 0, dtype=np.int64)
    width = _RUN
    into_buf = True
    while width < n:
        if into_buf:
            _merge_pass(key, idx, key_buf, idx_buf, n, width, with_index)
        else:
            _merge_pass(key_buf, idx_buf, key, idx, n, width, with_index)
        into_buf = not into_buf
        width *= 2
    if not into_buf:  # the last pass wrote the buffers
        key[:] = key_buf
        if with_index:
            idx[:] = idx_buf


@njit(cache=True)
def sort_values(values):
    """A sorted copy of values (n,) float64: ``np.sort(values)``, NaN last."""
    out = np.empty(values.shape[0])
    out[:] = values
    _merge_sort(out, np.empty(0, dtype=np.int64), False)
    return out


@njit(cache=True)
def sort_order(values):
    """(n,) int64 indices that sort values (n,) float64 stably: ``np.argsort(values, kind="stable")``,
    NaN last; tied values keep their input order."""
    n = values.shape[0]
    key = np.empty(n)
    key[:] = values
    idx = np.arange(n)
    _merge_sort(key, idx, True)
    return idx
