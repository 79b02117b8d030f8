"""Bayesian tools for an exponential progression-free-survival endpoint, vectorized over trials.

Model
-----
The PFS times of an arm are exponential with hazard lambda (events per person-month) and
lambda ~ Gamma(a, b) a priori (shape a, rate b; mean a / b). With d observed events and total
exposure E (the sum of every patient's follow-up in months, events and censored alike) the
likelihood is lambda^d exp(-lambda E), so the posterior is Gamma(a + d, b + E): conjugate for
right-censored exponential data, and for any data whose likelihood depends on lambda only
through (d, E), such as piecewise follow-up with one hazard. The median PFS is log(2) / lambda.

Hazard ratio
------------
For independent posteriors Gamma(a_k, b_k) and Gamma(a_c, b_c), G_k = b_k lambda_k and
G_c = b_c lambda_c are independent Gamma(., 1) variables and G_k / (G_k + G_c) ~ Beta(a_k, a_c).
Hence, exactly,

    P(lambda_k / lambda_c < h) = P(G_k / G_c < r) = I_x(a_k, a_c),  r = h b_k / b_c,  x = r / (1 + r),

with I the regularized incomplete beta function. The cumulants of log G (G ~ Gamma(a, 1)) are
the polygamma functions psi^(n-1)(a), so log HR = log G_k - log G_c - log b_k + log b_c has mean
psi(a_k) - psi(a_c) - log b_k + log b_c and variance psi'(a_k) + psi'(a_c).

Predictive probability of a confirmatory trial
----------------------------------------------
I-SPY 2 graduates a therapy on the predictive probability that a future 300-patient 1:1
phase 3 trial succeeds (Barker et al. 2009, Clin Pharmacol Ther 86:97). For a survival
endpoint, :func:`pp_confirmatory_survival` uses Schoenfeld's approximation (Schoenfeld 1981,
Biometrika 68:316): with D events in a 1:1 trial whose true log HR is theta, the log-rank
statistic behaves like a log-HR estimate ~ N(theta, 4 / D), and the one-sided level-alpha test
rejects H0: HR >= 1 when the estimate is below -z_{1-alpha} 2 / sqrt(D). Replacing the
posterior of theta by the normal with its exact mean m and variance v gives

    PP = Phi((-z_{1-alpha} 2 / sqrt(D) - m) / sqrt(v + 4 / D)).

Log-rank test
-------------
:func:`logrank_vs_control` compares each non-control arm with the control patients that are
included for it (e.g. concurrent controls), for many simulated trials in one compiled loop.
At each distinct event time t, with d events among the n patients at risk of the comparison
and n_k at risk on arm k (at risk at t: observed time >= t, so a patient censored at t is at
risk at t), O - E gains d_k - d n_k / n and the hypergeometric variance
V gains d (n_k / n) (1 - n_k / n) (n - d) / (n - 1) when n > 1. Tied times are grouped
exactly (equal floats). z = (O - E) / sqrt(V) is negative when arm k has fewer events than
expected (benefit); it equals the ``statistic`` of ``scipy.stats.logrank(x, y)`` with x the
arm-k sample and y the included control sample.

Per trial, every patient is assigned the last distinct event time at or before its own time,
through a hash table of the trial's distinct times when there are at most 512
(visit schedules: a few dozen) and by sorting otherwise; numbers at risk are then suffix sums
of per-time tallies, so scheduled times cost time linear in the patients. 500 trials x 1,500
patients x 6 arms take ~6 ms on visit-schedule times (~8 ms with a concurrent-control mask)
and ~70 ms with continuous times, on one core.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy import special

from .. import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from .._sorting import sort_order

_LOG2 = math.log(2.0)


def _z_upper(alpha):
    """z_{1-alpha}, the upper alpha quantile of the standard normal (accurate for small alpha)."""
    return -special.ndtri(np.asarray(alpha, dtype=np.float64))


# --------------------------------------------------------------------------- gamma posteriors


def gamma_posterior(events, exposure, prior_a, prior_b):
    """Posterior (shape, rate) Gamma(prior_a + events, prior_b + exposure) of an exponential hazard.

    events: observed events d; exposure: total follow-up E (same time unit as the hazard);
    prior_a, prior_b: prior shape and rate. All broadcast; returns float64 arrays (a, b).
    """
    events, exposure, prior_a, prior_b = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (events, exposure, prior_a, prior_b))
    )
    return prior_a + events, prior_b + exposure


def prob_hr_below(a_k, b_k, a_c, b_c, h=1.0):
    """Exact P(lambda_k / lambda_c < h) for independent Gamma(a_k, rate b_k) and Gamma(a_c, rate b_c).

    Equals I_x(a_k, a_c) with x = r / (1 + r), r = h b_k / b_c (see the module docstring).
    For r > 1 it is evaluated as the complement I_{1 - x}(a_c, a_k) with 1 - x = 1 / (1 + r)
    formed directly, so no precision is lost to 1 - x when x is near 1. All arguments
    broadcast (h too); returns float64 with the broadcast shape.
    """
    a_k, b_k, a_c, b_c, h = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a_k, b_k, a_c, b_c, h)))
    r = h * b_k / b_c
    with np.errstate(divide="ignore", invalid="ignore"):
        x = r / (1.0 + r)
        one_minus_x = 1.0 / (1.0 + r)
    low = r <= 1.0
    if a_k.ndim == 0:
        out = special.betainc(a_k, a_c, x) if low else special.betaincc(a_c, a_k, one_minus_x)
        return np.float64(out)
    # each element's one branch only (the same function of the same arguments as evaluating both
    # and choosing, at half the cost)
    out = np.empty(a_k.shape)
    high = ~low
    out[low] = special.betainc(a_k[low], a_c[low], x[low])
    out[high] = special.betaincc(a_c[high], a_k[high], one_minus_x[high])
    return out


def hazard_interval(a, b, level: float = 0.95):
    """Equal-tailed credible interval (lo, hi) of lambda ~ Gamma(a, rate b)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    tail = (1.0 - level) / 2.0
    return special.gammaincinv(a, tail) / b, special.gammainccinv(a, tail) / b


def median_pfs(a, b, level: float = 0.95):
    """Posterior median and equal-tailed interval of the median PFS log(2) / lambda, lambda ~ Gamma(a, b).

    log(2) / lambda is decreasing in lambda, so its quantiles are log(2) over the opposite
    quantiles of lambda: estimate = log 2 / median(lambda), interval
    (log 2 / hi_lambda, log 2 / lo_lambda). Returns (estimate, lo, hi), in the time unit of b.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    lo_lambda, hi_lambda = hazard_interval(a, b, level)
    median_lambda = special.gammaincinv(a, 0.5) / b
    with np.errstate(divide="ignore"):
        return _LOG2 / median_lambda, _LOG2 / hi_lambda, _LOG2 / lo_lambda


def log_hr_moments(a_k, b_k, a_c, b_c):
    """Exact posterior mean and variance of log(lambda_k / lambda_c) for independent gamma posteriors.

    mean = psi(a_k) - log b_k - psi(a_c) + log b_c, var = psi'(a_k) + psi'(a_c).
    """
    a_k, b_k, a_c, b_c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a_k, b_k, a_c, b_c)))
    psi_k, tri_k = _digamma_trigamma(a_k)
    psi_c, tri_c = _digamma_trigamma(a_c)
    mean = psi_k - np.log(b_k) - psi_c + np.log(b_c)
    var = tri_k + tri_c
    return mean, var


def _digamma_trigamma(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """psi(a) and psi'(a) element-wise, computed once per distinct value: the shapes of gamma
    posteriors are a prior shape plus a count of events, so a batch of them holds few distinct values
    (scipy's trigamma costs about 0.1 us a value); the same values as on the whole array."""
    if a.size < 64 or not (a > 0).all():  # (np.unique would merge 0.0 with -0.0, and NaNs)
        return special.digamma(a), special.polygamma(1, a)
    values, where = np.unique(a, return_inverse=True)
    if values.size * 4 > a.size:
        return special.digamma(a), special.polygamma(1, a)
    where = where.reshape(a.shape)
    return special.digamma(values)[where], special.polygamma(1, values)[where]


# --------------------------------------------------------------------------- confirmatory trial


def pp_confirmatory_survival(a_k, b_k, a_c, b_c, events, alpha: float = 0.025):
    """Predictive probability that a future 1:1 trial with ``events`` events shows HR < 1 (log-rank).

    Schoenfeld's approximation (Schoenfeld 1981, Biometrika 68:316): given the true log HR
    theta, the future trial's log-HR estimate is N(theta, 4 / D) with D = ``events``, and the
    one-sided level-alpha log-rank test rejects H0: HR >= 1 when it is below
    -z_{1-alpha} 2 / sqrt(D). theta's posterior is approximated by the normal with the exact
    moments of :func:`log_hr_moments` (m, v), so

        PP = Phi((-z_{1-alpha} 2 / sqrt(D) - m) / sqrt(v + 4 / D)).

    This is the survival analogue of I-SPY 2's graduation criterion, the predictive
    probability of success of a 300-patient phase 3 (Barker et al. 2009, Clin Pharmacol
    Ther 86:97). As v -> 0 it tends to :func:`schoenfeld_power` at HR = exp(m). ``events``
    must be positive; all arguments broadcast.
    """
    mean, var = log_hr_moments(a_k, b_k, a_c, b_c)
    d = np.asarray(events, dtype=np.float64)
    if np.any(~(d > 0)):
        raise ValueError("pp_confirmatory_survival: events must be positive")
    se = 2.0 / np.sqrt(d)
    return special.ndtr((-_z_upper(alpha) * se - mean) / np.sqrt(var + se * se))


def schoenfeld_events(hr, power, alpha: float = 0.025, allocation: float = 0.5):
    """Events needed by a one-sided level-alpha log-rank test to reach ``power`` at hazard ratio ``hr``.

    D = (z_{1-alpha} + z_power)^2 / (p (1 - p) log(hr)^2), p = ``allocation`` (share of the
    experimental arm); Schoenfeld 1981, Biometrika 68:316. Not rounded up.
    """
    hr = np.asarray(hr, dtype=np.float64)
    p = np.asarray(allocation, dtype=np.float64)
    z = _z_upper(alpha) + special.ndtri(np.asarray(power, dtype=np.float64))
    return z * z / (p * (1.0 - p) * np.log(hr) ** 2)


def schoenfeld_power(hr, events, alpha: float = 0.025, allocation: float = 0.5):
    """Approximate power of the one-sided level-alpha log-rank test for benefit (HR < 1) with ``events`` events.

    Phi(sqrt(D p (1 - p)) (-log hr) - z_{1-alpha}) (Schoenfeld 1981). For hr <= 1 this is
    the inverse of :func:`schoenfeld_events`; for hr > 1 it is the (below alpha) probability
    that the test wrongly shows benefit.
    """
    hr = np.asarray(hr, dtype=np.float64)
    p = np.asarray(allocation, dtype=np.float64)
    d = np.asarray(events, dtype=np.float64)
    return special.ndtr(np.sqrt(d * p * (1.0 - p)) * -np.log(hr) - _z_upper(alpha))


# --------------------------------------------------------------------------- log-rank test


_DISTINCT_CAP = 512  # distinct times per trial handled by hashing; more: a full sort
_TABLE_BITS = 11  # hash table of 2,048 slots (load factor at most 1/4)
_FIB = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing multiplier (2^64 / golden ratio)
_SHIFT = np.uint64(64 - _TABLE_BITS)


@njit(cache=True)
def _groups_hashed(time, bits, event, arm, t, table, key, value, has_event, slot, group, u, patient_group):
    """Event-time group of every patient of trial t from a hash table of its distinct times.

    Fills patient_group[i] with the index g of the last distinct event time u_g <= time
    (-1: none, or not in the analysis) and u[:G] with the sorted distinct event times.
    Returns G, or -1 when the trial has more than _DISTINCT_CAP distinct times.
    """
    n_pat = time.shape[1]
    mask = (1 << _TABLE_BITS) - 1
    n_dist = 0
    overflow = False
    for i in range(n_pat):
        x = time[t, i]
        if arm[t, i] < 0 or math.isnan(x):
            patient_group[i] = -1
            continue
        b = bits[t, i]
        s = np.int64((np.uint64(b) * _FIB) >> _SHIFT)
        while True:
            d = table[s] - 1
            if d < 0:
                if n_dist == _DISTINCT_CAP:
                    overflow = True
                    break
                table[s] = n_dist + 1
                key[n_dist] = b
                value[n_dist] = x
                has_event[n_dist] = event[t, i]
                slot[n_dist] = s
                patient_group[i] = n_dist
                n_dist += 1
                break
            if key[d] == b:
                if event[t, i]:
                    has_event[d] = True
                patient_group[i] = d
                break
            s = (s + 1) & mask
        if overflow:
            break
    for d in range(n_dist):
        table[slot[d]] = 0
    if overflow:
        return -1
    order = sort_order(value[:n_dist])
    n_times = 0
    j = 0
    while j < n_dist:  # runs of equal values (0.0 and -0.0 have different bits)
        x = value[order[j]]
        r = j
        any_event = False
        while r < n_dist and value[order[r]] == x:
            any_event = any_event or has_event[order[r]]
            r += 1
        if any_event:
            u[n_times] = x
            n_times += 1
        for q in range(j, r):
            group[order[q]] = n_times - 1
        j = r
    for i in range(n_pat):
        if patient_group[i] >= 0:
            patient_group[i] = group[patient_group[i]]
    return n_times


@njit(cache=True)
def _groups_sorted(time, event, arm, t, kept, t_kept, u, patient_group):
    """Same as _groups_hashed for any number of distinct times, by sorting the patients."""
    n_pat = time.shape[1]
    m = 0
    for i in range(n_pat):
        patient_group[i] = -1
        if arm[t, i] >= 0 and not math.isnan(time[t, i]):
            kept[m] = i
            t_kept[m] = time[t, i]
            m += 1
    order = sort_order(t_kept[:m])
    n_times = 0
    j = 0
    while j < m:
        x = t_kept[order[j]]
        r = j
        any_event = False
        while r < m and t_kept[order[r]] == x:
            any_event = any_event or event[t, kept[order[r]]]
            r += 1
        if any_event:
            u[n_times] = x
            n_times += 1
        for q in range(j, r):
            patient_group[kept[order[q]]] = n_times - 1
        j = r
    return n_times


@njit(cache=True)
def _logrank_kernel(time, bits, event, arm, include, use_mask, control, n_arms, z, oe, var):
    """Log-rank comparison of every non-control arm with its included controls, trial by trial.

    time (T, N) float64 and its bit patterns bits (T, N) int64, event (T, N) bool, arm (T, N)
    int64, include (T, N, K) bool (read only when use_mask). Fills z, oe, var (T, K).

    Per trial: the G distinct event times u_0 < ... < u_{G-1}; every patient in the analysis
    is tallied at g = the last event time <= its time (at risk at u_0..u_g, and its event, if
    any, is at u_g; patients before u_0 are never at risk at an event time), per arm, and
    control patients per comparison when a mask is given. Numbers at risk are then suffix
    sums of the tallies, accumulated from the last event time backwards.
    """
    n_trials, n_pat = time.shape
    size = max(n_pat, 1)
    table = np.zeros(1 << _TABLE_BITS, dtype=np.int64)
    key = np.empty(_DISTINCT_CAP, dtype=np.int64)
    value = np.empty(_DISTINCT_CAP)
    has_event = np.empty(_DISTINCT_CAP, dtype=np.bool_)
    slot = np.empty(_DISTINCT_CAP, dtype=np.int64)
    group = np.empty(_DISTINCT_CAP, dtype=np.int64)
    kept = np.empty(size, dtype=np.int64)
    t_kept = np.empty(size)
    u = np.empty(size)
    patient_group = np.empty(size, dtype=np.int64)
    exits = np.zeros((size, n_arms), dtype=np.int64)
    deaths = np.zeros((size, n_arms), dtype=np.int64)
    n_mask = size if use_mask else 1
    exits_c = np.zeros((n_mask, n_arms), dtype=np.int64)
    deaths_c = np.zeros((n_mask, n_arms), dtype=np.int64)
    hashing = True  # after one trial with too many distinct times, sort every later trial
    for t in range(n_trials):
        n_times = -1
        if hashing:
            n_times = _groups_hashed(
                time, bits, event, arm, t, table, key, value, has_event, slot, group, u, patient_group
            )
            hashing = n_times >= 0
        if n_times < 0:
            n_times = _groups_sorted(time, event, arm, t, kept, t_kept, u, patient_group)
        exits[:n_times, :] = 0
        deaths[:n_times, :] = 0
        if use_mask:
            exits_c[:n_times, :] = 0
            deaths_c[:n_times, :] = 0
        for i in range(n_pat):
            g = patient_group[i]
            if g < 0:
                continue
            a = arm[t, i]
            died = event[t, i]
            if a == control and use_mask:
                for k in range(n_arms):
                    if include[t, i, k]:
                        exits_c[g, k] += 1
                        if died:
                            deaths_c[g, k] += 1
            else:
                exits[g, a] += 1
                if died:
                    deaths[g, a] += 1
        for k in range(n_arms):
            if k == control:
                z[t, k] = np.nan
                oe[t, k] = np.nan
                var[t, k] = np.nan
                continue
            at_risk_k = 0
            at_risk_c = 0
            o_minus_e = 0.0
            v = 0.0
            for g in range(n_times - 1, -1, -1):
                at_risk_k += exits[g, k]
                if use_mask:
                    at_risk_c += exits_c[g, k]
                    d_c = deaths_c[g, k]
                else:
                    at_risk_c += exits[g, control]
                    d_c = deaths[g, control]
                d_k = deaths[g, k]
                d = d_k + d_c
                if d > 0 and at_risk_k > 0:
                    n = at_risk_k + at_risk_c
                    frac = at_risk_k / n
                    o_minus_e += d_k - d * frac
                    if n > 1:
                        v += d * frac * (1.0 - frac) * (n - d) / (n - 1.0)
            oe[t, k] = o_minus_e
            var[t, k] = v
            z[t, k] = o_minus_e / math.sqrt(v) if v > 0.0 else np.nan


def logrank_vs_control(time, event, arm, include_control, control: int, n_arms: int):
    """Log-rank z of every non-control arm against (the included) control patients, for many trials.

    time: (..., N) float64 observed time of each patient (event or censoring; NaN: not in the
    analysis). event: (..., N) bool, True for an event. arm: (..., N) integer arm index in
    0..n_arms-1, or negative for no arm (not in the analysis). include_control:
    (..., N, n_arms) bool or None; include_control[..., i, k] says whether control patient i
    enters the comparison of arm k (e.g. randomized while arm k was open); None uses every
    control patient for every arm. control: the control arm's index.

    Returns (z, observed_minus_expected, variance), each (..., n_arms) float64, with the
    conventions of the module docstring: risk set {time >= t}, exact ties, hypergeometric
    variance with the tie correction, z = (O - E) / sqrt(V) < 0 for fewer events than
    expected on arm k. z equals ``scipy.stats.logrank(x, y).statistic`` with x = arm k and
    y = its control sample. The control column is NaN in all three outputs; an arm with
    V == 0 (no patients, or no informative event) has z = NaN (and O - E = V = 0).
    """
    time = np.ascontiguousarray(time, dtype=np.float64)
    if time.ndim < 1:
        raise ValueError("logrank_vs_control: time must have a patient axis")
    shape = time.shape
    event = np.asarray(event)
    arm = np.asarray(arm)
    if event.shape != shape or arm.shape != shape:
        raise ValueError("logrank_vs_control: time, event and arm must have the same shape")
    if not np.issubdtype(arm.dtype, np.integer):
        raise TypeError("logrank_vs_control: arm must be an integer array")
    n_arms = int(n_arms)
    control = int(control)
    if not 0 <= control < n_arms:
        raise ValueError("logrank_vs_control: control must be an arm index")
    if arm.size and arm.max() >= n_arms:
        raise ValueError("logrank_vs_control: arm index >= n_arms")
    n_pat = shape[-1]
    n_rows = math.prod(shape[:-1])
    time2 = time.reshape(n_rows, n_pat)
    event2 = np.ascontiguousarray(event, dtype=np.bool_).reshape(n_rows, n_pat)
    arm2 = np.ascontiguousarray(arm, dtype=np.int64).reshape(n_rows, n_pat)
    if include_control is None:
        use_mask = False
        include = np.zeros((1, 1, 1), dtype=np.bool_)
    else:
        include_control = np.asarray(include_control)
        if include_control.shape != shape + (n_arms,):
            raise ValueError("logrank_vs_control: include_control must have shape time.shape + (n_arms,)")
        use_mask = True
        include = np.ascontiguousarray(include_control, dtype=np.bool_).reshape(n_rows, n_pat, n_arms)
    z = np.empty((n_rows, n_arms))
    oe = np.empty((n_rows, n_arms))
    var = np.empty((n_rows, n_arms))
    _logrank_kernel(time2, time2.view(np.int64), event2, arm2, include, use_mask, control, n_arms, z, oe, var)
    out_shape = shape[:-1] + (n_arms,)
    return z.reshape(out_shape), oe.reshape(out_shape), var.reshape(out_shape)


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the log-rank kernels on a tiny problem."""
    time = np.array([[1.0, 2.0, 2.0, 3.0]])
    event = np.array([[True, False, True, True]])
    arm = np.array([[0, 1, 0, 1]], dtype=np.int64)
    logrank_vs_control(time, event, arm, None, 0, 2)
    logrank_vs_control(time, event, arm, np.ones((1, 4, 2), dtype=bool), 0, 2)
    logrank_at_cuts(np.zeros((1, 4)), time, event, arm == 1, np.array([[1.5, 3.0]]))


@njit(cache=True)
def _analysis_times(entry, followed, event, by_time, by_entry, c, time, ev, who):
    """The analysis times of one trial at cut date ``c``, in ascending order: fills time, ev and who
    (the patient of each row) and returns their number. ``by_time``/``by_entry`` are the trial's
    patients sorted by follow-up time and by entry date: patients whose follow-up ended by the cut
    come by their own time, patients still followed at the cut (censored at c - entry) by decreasing
    entry, and the two ascending sequences are merged."""
    n_pat = entry.shape[0]
    m = 0
    a = 0
    b = n_pat - 1
    while True:
        while a < n_pat and entry[by_time[a]] + followed[by_time[a]] > c:
            a += 1
        while b >= 0 and (entry[by_entry[b]] > c or entry[by_entry[b]] + followed[by_entry[b]] <= c):
            b -= 1
        if a >= n_pat and b < 0:
            return m
        if b < 0 or (a < n_pat and followed[by_time[a]] <= c - entry[by_entry[b]]):
            i = by_time[a]
            time[m] = followed[i]
            ev[m] = event[i]
            a += 1
        else:
            i = by_entry[b]
            time[m] = c - entry[i]
            ev[m] = False
            b -= 1
        who[m] = i
        m += 1


@njit(cache=True)
def _logrank_cuts_kernel(entry, followed, event, experimental, cuts, z, oe, var):
    n_trials, n_pat = entry.shape
    n_cuts = cuts.shape[1]
    time = np.empty(n_pat)
    ev = np.empty(n_pat, dtype=np.bool_)
    on = np.empty(n_pat, dtype=np.bool_)
    who = np.empty(n_pat, dtype=np.int64)
    for t in range(n_trials):
        # two orders per trial serve every cut: patients whose follow-up ended by the cut, by their own
        # time; patients still followed at the cut, censored at c - entry, by decreasing entry
        by_time = sort_order(followed[t])
        by_entry = sort_order(entry[t])
        for k in range(n_cuts):
            m = _analysis_times(entry[t], followed[t], event[t], by_time, by_entry, cuts[t, k], time, ev, who)
            n1 = 0
            for j in range(m):
                on[j] = experimental[t, who[j]]
                if on[j]:
                    n1 += 1
            n = m
            o_minus_e = 0.0
            v = 0.0
            j = 0
            while j < m:
                tj = time[j]
                d = 0
                d1 = 0
                left = 0
                left1 = 0
                while j < m and time[j] == tj:
                    left += 1
                    if on[j]:
                        left1 += 1
                    if ev[j]:
                        d += 1
                        if on[j]:
                            d1 += 1
                    j += 1
                if d > 0:
                    frac = n1 / n
                    o_minus_e += d1 - d * frac
                    if n > 1:
                        v += d * frac * (1.0 - frac) * (n - d) / (n - 1.0)
                n -= left
                n1 -= left1
            oe[t, k] = o_minus_e
            var[t, k] = v
            z[t, k] = o_minus_e / math.sqrt(v) if v > 0.0 else np.nan


def logrank_at_cuts(entry, followed, event, experimental, cuts):
    """Two-arm log-rank statistics of many trials, each at several data cut-offs, in one compiled loop.

    entry: (T, N) calendar month of each patient's randomization; followed: (T, N) months from
    randomization to the patient's event or censoring (dropout, end of follow-up), whichever is
    first; event: (T, N) bool, True when ``followed`` ends in an event; experimental: (T, N) bool,
    the patient's arm (False: control). cuts: (T, K) calendar months of the analyses.

    At cut c a patient randomized by c (entry <= c) is in the analysis with time ``followed`` when
    entry + followed <= c (an event if ``event``), and otherwise censored at c - entry. Returns (z, observed_minus_expected,
    variance), each (T, K), for the experimental arm against the control, with the conventions of
    :func:`logrank_vs_control` (z < 0 for fewer events than expected on the experimental arm; ties
    exact; NaN z when the variance is 0). Equal to :func:`logrank_vs_control` on the cut data
    (tested).
    """
    entry = np.ascontiguousarray(entry, dtype=np.float64)
    shape = entry.shape
    followed = np.ascontiguousarray(followed, dtype=np.float64)
    event = np.ascontiguousarray(event, dtype=np.bool_)
    experimental = np.ascontiguousarray(experimental, dtype=np.bool_)
    cuts = np.ascontiguousarray(cuts, dtype=np.float64)
    if len(shape) != 2 or followed.shape != shape or event.shape != shape or experimental.shape != shape:
        raise ValueError("logrank_at_cuts: entry, followed, event and experimental must have one (T, N) shape")
    if cuts.ndim != 2 or cuts.shape[0] != shape[0]:
        raise ValueError("logrank_at_cuts: cuts must be (T, K) with the trials of entry")
    z = np.empty(cuts.shape)
    oe = np.empty(cuts.shape)
    var = np.empty(cuts.shape)
    _logrank_cuts_kernel(entry, followed, event, experimental, cuts, z, oe, var)
    return z, oe, var


# --------------------------------------------------------------------------- score tests and strata

SCORE_METHODS = ("logrank", "cox_score_breslow", "cox_score_efron")
"""Statistics of :func:`score_at_cuts`: the log-rank test (hypergeometric variance) and the Cox
partial-likelihood score test at beta = 0 with Breslow's or Efron's handling of tied times."""


@njit(cache=True)
def _tie_group(method, n, n1, d, d1):
    """Score and information of one group of d tied events (d1 experimental) among n at risk (n1
    experimental), at beta = 0, for method 0 (log-rank), 1 (Breslow) or 2 (Efron)."""
    frac = n1 / n
    if method == 2 and d > 1:
        u = float(d1)
        info = 0.0
        for j in range(d):
            mu = (n1 - j * d1 / d) / (n - j)
            u -= mu
            info += mu * (1.0 - mu)
        return u, info
    u = d1 - d * frac
    if method == 0:
        return u, (d * frac * (1.0 - frac) * (n - d) / (n - 1.0) if n > 1 else 0.0)
    return u, d * frac * (1.0 - frac)


@njit(cache=True)
def _score_cuts_kernel(entry, followed, event, experimental, stratum, n_strata, method, cuts, z, u_out, info_out):
    n_trials, n_pat = entry.shape
    n_cuts = cuts.shape[1]
    time = np.empty(n_pat)
    ev = np.empty(n_pat, dtype=np.bool_)
    on = np.empty(n_pat, dtype=np.bool_)
    st = np.empty(n_pat, dtype=np.int64)
    who = np.empty(n_pat, dtype=np.int64)
    n_s = np.zeros(n_strata, dtype=np.int64)
    n1_s = np.zeros(n_strata, dtype=np.int64)
    d_s = np.zeros(n_strata, dtype=np.int64)
    d1_s = np.zeros(n_strata, dtype=np.int64)
    left_s = np.zeros(n_strata, dtype=np.int64)
    left1_s = np.zeros(n_strata, dtype=np.int64)
    touched = np.empty(n_pat, dtype=np.int64)
    for t in range(n_trials):
        by_time = sort_order(followed[t])
        by_entry = sort_order(entry[t])
        for k in range(n_cuts):
            n_s[:] = 0
            n1_s[:] = 0
            m = _analysis_times(entry[t], followed[t], event[t], by_time, by_entry, cuts[t, k], time, ev, who)
            for j in range(m):
                i = who[j]
                on[j] = experimental[t, i]
                st[j] = stratum[t, i]
                n_s[st[j]] += 1
                if on[j]:
                    n1_s[st[j]] += 1
            u_total = 0.0
            info_total = 0.0
            j = 0
            while j < m:
                tj = time[j]
                n_touched = 0
                while j < m and time[j] == tj:
                    s = st[j]
                    if left_s[s] == 0:
                        # kept in increasing stratum order, so that the sums below do not depend on
                        # the order of the patients within the tie
                        q = n_touched
                        while q > 0 and touched[q - 1] > s:
                            touched[q] = touched[q - 1]
                            q -= 1
                        touched[q] = s
                        n_touched += 1
                    left_s[s] += 1
                    if on[j]:
                        left1_s[s] += 1
                    if ev[j]:
                        d_s[s] += 1
                        if on[j]:
                            d1_s[s] += 1
                    j += 1
                for q in range(n_touched):
                    s = touched[q]
                    if d_s[s] > 0:
                        du, di = _tie_group(method, n_s[s], n1_s[s], d_s[s], d1_s[s])
                        u_total += du
                        info_total += di
                    n_s[s] -= left_s[s]
                    n1_s[s] -= left1_s[s]
                    left_s[s] = 0
                    left1_s[s] = 0
                    d_s[s] = 0
                    d1_s[s] = 0
            u_out[t, k] = u_total
            info_out[t, k] = info_total
            z[t, k] = u_total / math.sqrt(info_total) if info_total > 0.0 else np.nan


def score_at_cuts(entry, followed, event, experimental, cuts, stratum=None, method: str = "logrank"):
    """Two-arm score statistics of many trials at several data cut-offs, optionally stratified.

    entry, followed, event, experimental, cuts: as :func:`logrank_at_cuts` ((T, N), (T, N), (T, N)
    bool, (T, N) bool, (T, K) calendar months). stratum: (T, N) integer stratum index of each
    patient in 0..S-1, or None for one stratum. method: one of :data:`SCORE_METHODS`:

    * ``logrank``: at each distinct event time of a stratum with d events (d1 experimental) among
      n at risk (n1 experimental), U gains d1 - d n1 / n and I the hypergeometric variance
      d (n1 / n)(1 - n1 / n)(n - d) / (n - 1); the unstratified statistic equals
      :func:`logrank_at_cuts`;
    * ``cox_score_breslow``: the score test of the Cox model at beta = 0 with Breslow's partial
      likelihood: the same U, and I gains d (n1 / n)(1 - n1 / n) (the binomial variance);
    * ``cox_score_efron``: the score test with Efron's (1977) partial likelihood: with
      mu_j = (n1 - j d1 / d) / (n - j), U gains d1 - sum_j mu_j and I gains sum_j mu_j (1 - mu_j),
      j = 0..d-1.

    All three are the same when no two events share a time. With strata, U and I are sums over
    strata of each stratum's own risk sets (the stratified log-rank test; the Cox score test of a
    model with a baseline hazard per stratum); within a tie, strata are added in increasing order, so
    that the bits do not depend on the order of the patients (tested). Returns (z, U, I), each
    (T, K): z = U / sqrt(I), negative when the experimental arm has fewer events than expected; NaN
    when I = 0.
    """
    if method not in SCORE_METHODS:
        raise ValueError(f"score_at_cuts: method must be one of {SCORE_METHODS}, got {method!r}")
    entry = np.ascontiguousarray(entry, dtype=np.float64)
    shape = entry.shape
    followed = np.ascontiguousarray(followed, dtype=np.float64)
    event = np.ascontiguousarray(event, dtype=np.bool_)
    experimental = np.ascontiguousarray(experimental, dtype=np.bool_)
    cuts = np.ascontiguousarray(cuts, dtype=np.float64)
    if len(shape) != 2 or followed.shape != shape or event.shape != shape or experimental.shape != shape:
        raise ValueError("score_at_cuts: entry, followed, event and experimental must have one (T, N) shape")
    if cuts.ndim != 2 or cuts.shape[0] != shape[0]:
        raise ValueError("score_at_cuts: cuts must be (T, K) with the trials of entry")
    if stratum is None:
        stratum = np.zeros(shape, dtype=np.int64)
    stratum = np.ascontiguousarray(stratum, dtype=np.int64)
    if stratum.shape != shape:
        raise ValueError("score_at_cuts: stratum must have the (T, N) shape of entry")
    if stratum.size and stratum.min() < 0:
        raise ValueError("score_at_cuts: stratum indices must be >= 0")
    n_strata = int(stratum.max()) + 1 if stratum.size else 1
    z = np.empty(cuts.shape)
    u = np.empty(cuts.shape)
    info = np.empty(cuts.shape)
    _score_cuts_kernel(
        entry, followed, event, experimental, stratum, n_strata, SCORE_METHODS.index(method), cuts, z, u, info
    )
    return z, u, info
