"""BATTLE's hierarchical probit model at the looks of a stratified design.

A stratified design with ``strata.analysis: hierarchical_probit`` analyses its 8-week disease
control (or any higher-is-better binary endpoint) with the exact posterior of
:mod:`platform_sim.posterior.probit`: for arm j in stratum k the rate is gamma_jk = Phi(mu_jk),
mu_jk ~ N(phi_j, sigma^2) across the strata and phi_j ~ N(phi_mean, tau^2). At each look it
gives, per (trial, stratum, arm):

* the posterior mean DCR, on which BATTLE randomized (probabilities proportional to it among
  the arms open in the patient's stratum);
* Pr(DCR > c | data) for every threshold the design uses: each group's ``reference_rate``
  (declare the arm effective there when it exceeds the superiority threshold; BATTLE: 0.3 and
  0.8) and the suspension reference (suspend while it is below ``suspension.below``; BATTLE:
  0.5 and 0.1).

Arms share no parameter, so the posterior factorises by (trial, arm): a row of K strata. The
engine is exact but costs about half a millisecond per trial-look; :class:`ProbitLooks` keeps
each row's counts and summaries and recomputes only the rows whose counts changed since they
were last computed (an arm suspended in every stratum, or a trial whose batch added no
outcomes to an arm, costs nothing).

With ``probit.refit`` (BATTLE-2, two stages): until the refit look the model sees the coarse
groups only (the counts of the strata each coarse group pools), and every stratum of a coarse
group gets its posterior. At the refit look each trial compares the two marker models by their
marginal likelihoods, summed over the arms; the fine model (every stratum its own group) is
kept for the rest of the trial where the Bayes factor exceeds ``min_bayes_factor``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config.strata import ProbitModel
from ..posterior.probit import ProbitPrior, probit_posterior


@dataclass(frozen=True)
class ProbitSetup:
    """What the looks need of the design's probit section, resolved against its strata.

    ``thresholds``: the DCR values c of every Pr(DCR > c) the design reads (sorted, distinct).
    ``coarse_of``: (S,) index of each stratum's stage-1 group (refit only, else None).
    ``refit_look``: the look that ends stage 1 (-1: no refit)."""

    prior: ProbitPrior
    thresholds: tuple[float, ...]
    declare_final: bool
    coarse_names: tuple[str, ...] | None = None
    coarse_of: np.ndarray | None = None
    refit_look: int = -1
    log_min_bayes_factor: float = 0.0

    @classmethod
    def from_config(cls, model: ProbitModel | None, group_names: list[str], thresholds, followed_n) -> ProbitSetup:
        """``followed_n``: followed patients at each look (to place the refit look)."""
        model = ProbitModel() if model is None else model
        prior = ProbitPrior(phi_mean=model.phi_mean, tau=model.tau, sigma=model.sigma)
        thr = tuple(sorted({float(c) for c in thresholds}))
        refit = model.refit
        if refit is None:
            return cls(prior, thr, model.declare == "final")
        names = tuple(refit.coarse)
        coarse_of = np.empty(len(group_names), dtype=np.int64)
        for g, members in enumerate(refit.coarse.values()):
            for m in members:
                coarse_of[group_names.index(m)] = g
        reached = np.flatnonzero(np.asarray(followed_n) >= refit.after_followed)
        look = int(reached[0]) if reached.size else -1
        return cls(prior, thr, model.declare == "final", names, coarse_of, look, math.log(refit.min_bayes_factor))


@dataclass(frozen=True)
class ProbitLook:
    """The model's posterior at one look, for R trials: arrays (R, S, K) (S strata, K arms)."""

    mean: np.ndarray
    sd: np.ndarray
    above: np.ndarray  # (R, S, K, C) Pr(DCR > thresholds[c])
    thresholds: tuple[float, ...]

    def prob_above(self, c) -> np.ndarray:
        """Pr(DCR > c) for a threshold per stratum (array (S,) or (R, S)) or one number: (R, S, K)."""
        thr = np.asarray(self.thresholds)
        c = np.asarray(c, dtype=float)
        idx = np.searchsorted(thr, c)
        if np.any(idx >= thr.size) or np.any(thr[np.minimum(idx, thr.size - 1)] != c):
            raise KeyError(f"threshold(s) {c.tolist()} not computed; thresholds are {self.thresholds}")
        if idx.ndim == 0:
            return self.above[..., int(idx)]
        idx = np.broadcast_to(idx, self.mean.shape[:2])[:, :, None, None]
        return np.take_along_axis(self.above, np.broadcast_to(idx, self.mean.shape + (1,)), axis=3)[..., 0]

    def beta_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """The Beta(a, b) with each posterior's mean and variance (for tables and the storyboard only;
        decisions read the exact probabilities)."""
        m = np.clip(self.mean, 1e-12, 1 - 1e-12)
        v = np.maximum(self.sd**2, 1e-300)
        common = np.maximum(m * (1 - m) / v - 1.0, 1e-6)
        return m * common, (1 - m) * common


class _RowCache:
    """Posterior summaries of (trial, arm) rows of G groups, recomputed only where the counts changed."""

    def __init__(self, prior: ProbitPrior, thresholds: tuple[float, ...], n_trials: int, n_arms: int, n_groups: int):
        self.prior, self.thresholds = prior, thresholds
        shape = (n_trials, n_arms, n_groups)
        self.y = np.full(shape, -1, dtype=np.int64)
        self.n = np.full(shape, -1, dtype=np.int64)
        self.mean = np.zeros(shape)
        self.sd = np.zeros(shape)
        self.above = np.zeros(shape + (len(thresholds),))
        self.log_evidence = np.zeros((n_trials, n_arms))
        self.computed = 0  # (trial, arm) rows sent to the engine
        self.requested = 0  # (trial, arm) rows asked for

    def __call__(self, rows: np.ndarray, y: np.ndarray, n: np.ndarray) -> None:
        """Bring rows ``rows`` up to date with counts ``y``, ``n`` of shape (R, K, G)."""
        changed = (y != self.y[rows]).any(axis=2) | (n != self.n[rows]).any(axis=2)  # (R, K)
        self.requested += changed.size
        r, k = np.nonzero(changed)
        if r.size == 0:
            return
        post = probit_posterior(y[r, k][:, None, :], n[r, k][:, None, :], self.thresholds, self.prior)
        t = rows[r]
        self.y[t, k], self.n[t, k] = y[r, k], n[r, k]
        self.mean[t, k] = post.mean[:, 0]
        self.sd[t, k] = post.sd[:, 0]
        self.above[t, k] = post.prob_above[:, 0]
        self.log_evidence[t, k] = post.log_evidence[:, 0]
        self.computed += r.size


class ProbitLooks:
    """The probit model's posterior at the looks of a batch of trials (see the module docstring)."""

    def __init__(self, setup: ProbitSetup, n_trials: int, n_strata: int, n_arms: int):
        self.setup = setup
        self.fine = _RowCache(setup.prior, setup.thresholds, n_trials, n_arms, n_strata)
        self.coarse = None
        self.refined = np.ones(n_trials, dtype=bool)  # every stratum its own group
        if setup.coarse_of is not None:
            n_coarse = int(setup.coarse_of.max()) + 1
            self.coarse = _RowCache(setup.prior, setup.thresholds, n_trials, n_arms, n_coarse)
            self.membership = (setup.coarse_of[:, None] == np.arange(n_coarse)[None, :]).astype(np.int64)  # (S, G)
            self.refined[:] = False

    @property
    def computed(self) -> int:
        return self.fine.computed + (self.coarse.computed if self.coarse is not None else 0)

    @property
    def requested(self) -> int:
        return self.fine.requested + (self.coarse.requested if self.coarse is not None else 0)

    def __call__(self, look: int | None, rows: np.ndarray, y: np.ndarray, n: np.ndarray) -> ProbitLook:
        """The posterior of trials ``rows`` given counts of shape (R, S, K) (S strata, K arms) at look
        ``look`` (None: the final analysis after the looks); at the refit look, first choose each
        trial's marker model."""
        y_t = np.swapaxes(y, 1, 2).astype(np.int64)
        n_t = np.swapaxes(n, 1, 2).astype(np.int64)
        if self.coarse is not None and look is not None and look == self.setup.refit_look:
            self.fine(rows, y_t, n_t)
            self.coarse(rows, y_t @ self.membership, n_t @ self.membership)
            gain = self.fine.log_evidence[rows].sum(axis=1) - self.coarse.log_evidence[rows].sum(axis=1)
            self.refined[rows] = gain > self.setup.log_min_bayes_factor
        return self._view(rows, y_t, n_t)

    def _view(self, rows, y_t, n_t) -> ProbitLook:
        fine = self.refined[rows]
        mean = np.empty(y_t.shape)
        sd = np.empty(y_t.shape)
        above = np.empty(y_t.shape + (len(self.setup.thresholds),))
        if fine.any():
            r = rows[fine]
            self.fine(r, y_t[fine], n_t[fine])
            mean[fine], sd[fine], above[fine] = self.fine.mean[r], self.fine.sd[r], self.fine.above[r]
        if (~fine).any():
            assert self.coarse is not None and self.setup.coarse_of is not None  # only a two-stage model pools
            r = rows[~fine]
            self.coarse(r, y_t[~fine] @ self.membership, n_t[~fine] @ self.membership)
            of = self.setup.coarse_of
            mean[~fine] = self.coarse.mean[r][:, :, of]
            sd[~fine] = self.coarse.sd[r][:, :, of]
            above[~fine] = self.coarse.above[r][:, :, of]
        return ProbitLook(
            np.swapaxes(mean, 1, 2), np.swapaxes(sd, 1, 2), np.swapaxes(above, 1, 2), self.setup.thresholds
        )


__all__ = ["ProbitLook", "ProbitLooks", "ProbitSetup"]
