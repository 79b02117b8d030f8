"""When a calendar platform sees a patient's outcome: the one rule every analysis of the platform
family reads (the unadjusted comparisons in ``platform.py`` and the period model in
``platform_period.py``), kept apart so that both import it from below."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)

__all__ = ["outcome_seen"]


@njit(cache=True)
def outcome_seen(e, c, a, t, assess, survival, read_at):
    """A patient randomized at date ``a`` seen at date ``t``: (has outcome, event, time at risk, date the
    outcome is seen). Dates are compared as ``a + delay <= t`` everywhere, so the date a trigger
    expects an outcome and the analysis on that date agree to the last bit."""
    if survival:
        found = np.inf
        j = 0.0
        if np.isfinite(e):
            j = max(math.ceil(e / assess), 1)
            found = j * assess
        if not np.isfinite(t):
            return False, False, 0.0, a + found if found <= c else np.inf
        if found <= c:
            if a + found <= t:
                return True, True, (j - 0.5) * assess, a + found
            follow = t - a
            seen_at = a + found
        else:
            follow = min(t - a, c)
            seen_at = np.inf
        return False, False, math.floor(follow / assess) * assess, seen_at
    if a + read_at <= t:
        return True, e > 0.5, 0.0, a + read_at
    return False, False, 0.0, a + read_at
