"""Per-trial results of simulated trials, and the truth they are judged against: one type each.

Every design family returns its simulated trials as one :class:`TrialResults`, a
columnar record whose leading axis is the simulated trial. Its common fields are
what every design has: patients and events per arm x stratum, claims per arm x
subgroup, a final status per arm, a stop reason, screening, duration and final
estimates. What only some families have (allocation histories, P(best), final
log-rank statistics, calendar dates of each arm) travels in named values and
extras, so nothing outside the family needs to know which kind of design produced
them.

Axes: ``trial`` (T), ``arm`` (K, in design order), ``stratum`` (S: the partition of
randomized patients the design works with, ``("all",)`` without strata) and
``subgroup`` (G: where the design makes claims; each subgroup is a union of strata,
``membership`` (G, S)). A claim for all patients of a design with strata is a claim
in the subgroup that covers every stratum.

:class:`Truth` is what is true in the scenario for the design's arms and subgroups:
the exact value of each arm's treatment, its effect against the arm's reference,
and whether the arm works there (a claim is a true positive), is null there (a
claim is a false positive) or neither (a grey zone, or no claim can be made).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace

import numpy as np

# Final status of an arm, for every family.
ACTIVE = 0  # still in the trial at the end, undecided (not the control)
CONTROL = 1  # the common control at the end
EFFECTIVE = 2  # declared effective: superior to the control, best, or graduated
INFERIOR = 3  # dropped as inferior (includes a control replaced by a better arm)
FUTILE = 4  # dropped for futility
EQUIVALENT = 5  # dropped as equivalent to the control
NOT_ENTERED = 6  # never randomized (not in the stratum, or never entered the platform)
STATUS_NAMES = ("active", "control", "effective", "inferior", "futile", "equivalent", "not_entered")
# the words of designs with looks, same codes
SUPERIOR = EFFECTIVE
INELIGIBLE = NOT_ENTERED

# Why a trial with looks stopped (index into TrialResults.stop_names).
STOP_MAX = 0
STOP_SUPERIORITY = 1
STOP_EQUIVALENCE = 2
STOP_ARMS_DROPPED = 3
STOP_NAMES = ("max", "superiority", "equivalence", "arms_dropped")

_DICTS = ("estimates", "selections", "arm_values", "trial_values", "extras")


@dataclass
class TrialResults:
    """T simulated trials of one design on one scenario (see the module docstring).

    ``estimates``: named final estimates (T, K, G), each of the :class:`Truth` field named in
    ``estimate_targets`` (``"value"``: the arm's own endpoint value; ``"effect"``: its effect
    against its reference), NaN where there is none. ``selections``: for each selection strategy,
    the arm a trial selects (T,), -1 for none, and ``selection_estimate`` (T, K) the final estimate of
    each arm's value among all its patients, which a selected arm's bias is computed from (against
    ``Truth.value_all``). ``arm_values`` (T, K) and ``trial_values`` (T,):
    further per-trial values whose mean (or, for booleans, proportion) is an operating
    characteristic; NaN where a value does not apply (an arm that never entered). ``extras``:
    arrays kept with the records but not summarised (allocation histories...), leading axis the
    trial, their dimensions in ``extra_dims``.
    """

    trial: np.ndarray  # (T,) int64: index of each trial in the run
    arms: tuple[str, ...]
    strata: tuple[str, ...]
    subgroups: tuple[str, ...]
    membership: np.ndarray  # (G, S) bool
    stop_names: tuple[str, ...]
    n: np.ndarray  # (T, K, S) int64 patients randomized
    events: np.ndarray  # (T, K, S) int64 endpoint events among them at the final analysis
    claimed: np.ndarray  # (T, K, G) bool: the arm was declared effective in the subgroup
    claim_month: np.ndarray  # (T, K, G) float: months from opening to the claim (NaN: none)
    status: np.ndarray  # (T, K) int8 STATUS codes
    stop_reason: np.ndarray  # (T,) int8: index into stop_names
    n_screened: np.ndarray  # (T,) int64 patients screened
    duration_months: np.ndarray  # (T,) float: months from opening to the last analysis
    estimates: dict[str, np.ndarray] = field(default_factory=dict)
    estimate_targets: dict[str, str] = field(default_factory=dict)
    selections: dict[str, np.ndarray] = field(default_factory=dict)
    selection_estimate: np.ndarray | None = None  # (T, K) final rate of each arm among all its patients
    arm_values: dict[str, np.ndarray] = field(default_factory=dict)
    trial_values: dict[str, np.ndarray] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    extra_dims: dict[str, tuple[str, ...]] = field(default_factory=dict)

    # ------------------------------------------------------------------ shape

    @property
    def n_trials(self) -> int:
        return int(self.trial.shape[0])

    @property
    def n_arms(self) -> int:
        return len(self.arms)

    @property
    def n_randomized(self) -> np.ndarray:
        """(T,) patients randomized."""
        return self.n.sum(axis=(1, 2))

    @property
    def n_by_arm(self) -> np.ndarray:
        """(T, K) patients randomized per arm."""
        return self.n.sum(axis=2)

    @property
    def events_by_arm(self) -> np.ndarray:
        return self.events.sum(axis=2)

    @property
    def claimed_any(self) -> np.ndarray:
        """(T, K) the arm was declared effective in some subgroup."""
        return self.claimed.any(axis=2)

    def _per_trial_fields(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and f.name != "membership":
                yield f.name, value

    # ------------------------------------------------------------------ joining and cutting

    @classmethod
    def concatenate(cls, parts: list["TrialResults"]) -> "TrialResults":
        """The trials of ``parts`` (same design and scenario), in order."""
        first = parts[0]
        out = {}
        for f in fields(cls):
            value = getattr(first, f.name)
            if f.name in _DICTS:
                out[f.name] = {k: np.concatenate([getattr(p, f.name)[k] for p in parts]) for k in value}
            elif isinstance(value, np.ndarray) and f.name != "membership":
                out[f.name] = np.concatenate([getattr(p, f.name) for p in parts])
            elif value is None:
                out[f.name] = None
            else:
                out[f.name] = value
        return cls(**out)

    def take(self, rows) -> "TrialResults":
        """The trials at positions ``rows`` (an index array, a slice or a boolean mask)."""
        changes = {name: value[rows] for name, value in self._per_trial_fields()}
        for name in _DICTS:
            changes[name] = {k: v[rows] for k, v in getattr(self, name).items()}
        return replace(self, **changes)

    # ------------------------------------------------------------------ to and from flat arrays

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every array under a flat name (``estimates.rate``...) and the names and targets as JSON
        under ``__meta__``: what a records file holds (no pickling)."""
        arrays = {name: value for name, value in self._per_trial_fields()}
        arrays["membership"] = self.membership
        for name in _DICTS:
            for k, v in getattr(self, name).items():
                arrays[f"{name}.{k}"] = np.asarray(v)
        meta = {
            "arms": list(self.arms),
            "strata": list(self.strata),
            "subgroups": list(self.subgroups),
            "stop_names": list(self.stop_names),
            "estimate_targets": self.estimate_targets,
            "extra_dims": {k: list(v) for k, v in self.extra_dims.items()},
            "keys": {name: list(getattr(self, name)) for name in _DICTS},
        }
        arrays["__meta__"] = np.array(json.dumps(meta))
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "TrialResults":
        """The inverse of :meth:`to_arrays`; a missing array raises ``KeyError`` naming it."""
        meta = json.loads(str(arrays["__meta__"]))
        kwargs = {
            "arms": tuple(meta["arms"]),
            "strata": tuple(meta["strata"]),
            "subgroups": tuple(meta["subgroups"]),
            "stop_names": tuple(meta["stop_names"]),
            "estimate_targets": dict(meta["estimate_targets"]),
            "extra_dims": {k: tuple(v) for k, v in meta["extra_dims"].items()},
        }
        for name in _DICTS:
            kwargs[name] = {k: arrays[f"{name}.{k}"] for k in meta["keys"][name]}
        kwargs["selection_estimate"] = arrays.get("selection_estimate")
        for f in fields(cls):
            if f.name not in kwargs:
                kwargs[f.name] = arrays[f.name]
        return cls(**kwargs)

    # ------------------------------------------------------------------ tables

    def trial_frame(self, extra_columns: bool = True):
        """One row per simulated trial (pandas): ``trial``, ``stop_reason``, ``n_screened``,
        ``n_randomized``, ``duration_months``, the subgroups claimed (``claims``: ``arm@subgroup``
        joined by ``;``), the family's trial values and, with ``extra_columns``, its per-trial extras."""
        import pandas as pd

        cols: dict[str, object] = {
            "trial": self.trial,
            "stop_reason": pd.Categorical.from_codes(self.stop_reason.astype(int), categories=list(self.stop_names)),
            "n_screened": self.n_screened,
            "n_randomized": self.n_randomized,
            "duration_months": self.duration_months,
            "claims": self._claims(),
        }
        for name, value in self.trial_values.items():
            cols[name] = np.asarray(value)
        if extra_columns:
            for name, value in self.extras.items():
                if self.extra_dims.get(name) == ("trial",):
                    cols[name] = np.asarray(value)
        return pd.DataFrame(cols)

    def _claims(self) -> np.ndarray:
        out = np.full(self.n_trials, "", dtype=object)
        t, k, g = np.nonzero(self.claimed)
        for i, j, h in zip(t, k, g):
            tag = f"{self.arms[j]}@{self.subgroups[h]}"
            out[i] = tag if not out[i] else f"{out[i]};{tag}"
        return out

    def to_xarray(self):
        """Every per-trial array as an :class:`xarray.Dataset` with named dimensions: ``trial`` (the
        trial's index in the run, a coordinate), ``arm``, ``stratum`` and ``subgroup`` (coordinates of
        names), and the dimensions of the family's extras (``look``, ``period``, numbered from 0).

        Variables: ``n`` and ``events`` (trial, arm, stratum); ``claimed`` and ``claim_month``
        (trial, arm, subgroup; months, NaN without a claim); ``status`` (trial, arm) and
        ``stop_reason`` (trial), as words; ``n_screened`` and ``duration_months`` (trial);
        ``estimate_<name>`` (trial, arm, subgroup, with the truth field it estimates in its
        ``target`` attribute); ``selected_<strategy>`` (trial: the arm selected, "" for none) and
        ``selection_estimate`` (trial, arm); the family's arm values (trial, arm), trial values
        (trial) and extras (an extra whose name is taken is prefixed ``extra_``); ``membership``
        (subgroup, stratum): which strata make up each subgroup."""
        import xarray as xr

        data: dict[str, tuple] = {
            "n": (("trial", "arm", "stratum"), self.n),
            "events": (("trial", "arm", "stratum"), self.events),
            "claimed": (("trial", "arm", "subgroup"), np.asarray(self.claimed, dtype=bool)),
            "claim_month": (("trial", "arm", "subgroup"), self.claim_month, {"units": "months"}),
            "status": (("trial", "arm"), np.asarray(STATUS_NAMES)[self.status.astype(int)]),
            "stop_reason": (("trial",), np.asarray(self.stop_names)[self.stop_reason.astype(int)]),
            "n_screened": (("trial",), self.n_screened),
            "duration_months": (("trial",), self.duration_months, {"units": "months"}),
            "membership": (("subgroup", "stratum"), np.asarray(self.membership, dtype=bool)),
        }
        for name, value in self.estimates.items():
            data[f"estimate_{name}"] = (
                ("trial", "arm", "subgroup"),
                value,
                {"target": self.estimate_targets.get(name, "")},
            )
        arm_names = np.asarray(self.arms + ("",))
        for name, selected in self.selections.items():
            data[f"selected_{name}"] = (("trial",), arm_names[np.where(selected >= 0, selected, len(self.arms))])
        if self.selection_estimate is not None:
            data["selection_estimate"] = (("trial", "arm"), self.selection_estimate)
        for name, value in self.arm_values.items():
            data.setdefault(name, (("trial", "arm"), np.asarray(value)))
        for name, value in self.trial_values.items():
            data.setdefault(name, (("trial",), np.asarray(value)))
        for name, value in self.extras.items():
            value = np.asarray(value)
            dims = self.extra_dims.get(name) or ("trial", *(f"{name}_dim_{i}" for i in range(1, value.ndim)))
            data[name if name not in data else f"extra_{name}"] = (tuple(dims), value)
        coords: dict[str, object] = {
            "trial": self.trial,
            "arm": list(self.arms),
            "stratum": list(self.strata),
            "subgroup": list(self.subgroups),
        }
        dataset = xr.Dataset(data, coords=coords)
        for dim in dataset.dims:
            if dim not in dataset.coords:
                dataset = dataset.assign_coords({dim: np.arange(dataset.sizes[dim])})
        return dataset

    def arm_frame(self):
        """One row per simulated trial x arm (pandas): ``trial``, ``arm``, ``n``, ``events``, ``status``,
        ``claimed`` (in some subgroup), ``claim_month`` (the first), the estimates in the subgroup of all
        patients, the family's arm values and its per-arm extras."""
        import pandas as pd

        T, K = self.n_trials, self.n_arms
        full = np.flatnonzero(self.membership.all(axis=1))
        g = int(full[0]) if full.size else 0
        first = np.where(self.claimed, self.claim_month, np.inf).min(axis=2)
        cols: dict[str, object] = {
            "trial": np.repeat(self.trial, K),
            "arm": pd.Categorical(np.tile(np.array(self.arms, dtype=object), T), categories=list(self.arms)),
            "n": self.n_by_arm.ravel(),
            "events": self.events_by_arm.ravel(),
            "status": pd.Categorical.from_codes(self.status.ravel().astype(int), categories=list(STATUS_NAMES)),
            "claimed": self.claimed_any.ravel(),
            "claim_month": np.where(np.isfinite(first), first, np.nan).ravel(),
        }
        for name, value in self.estimates.items():
            cols[name] = value[:, :, g].ravel()
        for name, value in self.arm_values.items():
            cols[name] = np.asarray(value, dtype=float).ravel()
        for name, value in self.extras.items():
            if self.extra_dims.get(name) == ("trial", "arm"):
                cols[name] = np.asarray(value).ravel()
        return pd.DataFrame(cols)


@dataclass(frozen=True)
class Truth:
    """What is true in the scenario for a design's arms (K) and subgroups (G), exactly.

    ``value``: the arm's treatment's endpoint value among the subgroup's patients (a rate, or
    a median time in months); ``reference``: what the arm is compared with there (the control's
    value, a reference rate, or the best other arm); ``effect``: the arm's effect on the design's
    scale (``effect_scale``: a rate difference, or a log hazard ratio; ``effect_better``: +1 when
    larger is better for patients, -1 when smaller is). ``works``: the effect reaches the
    clinically relevant size (a claim is a true positive); ``null``: the arm is no better than its
    reference (a claim is a false positive); ``judged``: the arm can make a claim there (not the
    control, randomized in the subgroup). ``works_in_stratum`` / ``null_in_stratum`` (K, S): the
    same per stratum, to count the patients randomized to arms that work for them.
    """

    arms: tuple[str, ...]
    subgroups: tuple[str, ...]
    strata: tuple[str, ...]
    membership: np.ndarray  # (G, S) bool
    share: np.ndarray  # (G,) share of randomizable patients in the subgroup (every stratum open)
    value: np.ndarray  # (K, G)
    reference: np.ndarray  # (K, G)
    effect: np.ndarray  # (K, G)
    works: np.ndarray  # (K, G) bool
    null: np.ndarray  # (K, G) bool
    judged: np.ndarray  # (K, G) bool
    works_in_stratum: np.ndarray  # (K, S) bool
    null_in_stratum: np.ndarray  # (K, S) bool
    control: int  # the design's control arm (-1: none)
    value_name: str  # "rate", "median PFS (months)"
    effect_scale: str  # "rate difference", "log hazard ratio", "margin over the best other arm"
    effect_better: float  # +1: a larger effect is better for patients; -1: a smaller one
    overall_value: np.ndarray | None = None  # (K,) value among all randomizable patients, when no subgroup is all
    overall_effect: np.ndarray | None = None  # (K,) the same for the effect

    @property
    def all_patients(self) -> int | None:
        """The subgroup of all patients (covering every stratum), or None."""
        full = np.flatnonzero(self.membership.all(axis=1))
        return int(full[0]) if full.size else None

    @property
    def value_all(self) -> np.ndarray:
        """(K,) each arm's exact value among all randomizable patients (NaN: not known)."""
        g = self.all_patients
        if g is not None:
            return self.value[:, g]
        return self.overall_value if self.overall_value is not None else np.full(len(self.arms), np.nan)

    @property
    def effect_all(self) -> np.ndarray:
        """(K,) each arm's exact effect among all randomizable patients (NaN: not known)."""
        g = self.all_patients
        if g is not None:
            return self.effect[:, g]
        return self.overall_effect if self.overall_effect is not None else np.full(len(self.arms), np.nan)

    def role(self, k: int, g: int) -> str:
        """'works', 'null', 'grey zone', 'control' or 'not in subgroup'."""
        if not np.isfinite(self.value[k, g]):
            return "not in subgroup"
        if self.judged[k, g]:
            return "works" if self.works[k, g] else "null" if self.null[k, g] else "grey zone"
        return "control" if k == self.control else "not in subgroup"

    @property
    def roles(self) -> np.ndarray:
        """(K, G) :meth:`role` of every arm x subgroup."""
        out = np.empty(self.value.shape, dtype=object)
        for k in range(len(self.arms)):
            for g in range(len(self.subgroups)):
                out[k, g] = self.role(k, g)
        return out

    def frame(self):
        """The truth as a tidy pandas table: one row per arm x subgroup."""
        import pandas as pd

        rows = []
        roles = self.roles
        for k, arm in enumerate(self.arms):
            for g, sub in enumerate(self.subgroups):
                rows.append(
                    {
                        "arm": arm,
                        "subgroup": sub,
                        "share": float(self.share[g]),
                        "value": float(self.value[k, g]),
                        "reference": float(self.reference[k, g]),
                        "effect": float(self.effect[k, g]),
                        "role": roles[k, g],
                        "works": bool(self.works[k, g]),
                        "null": bool(self.null[k, g]),
                    }
                )
        return pd.DataFrame(rows)


__all__ = [
    "ACTIVE",
    "CONTROL",
    "EFFECTIVE",
    "EQUIVALENT",
    "FUTILE",
    "INELIGIBLE",
    "INFERIOR",
    "NOT_ENTERED",
    "STATUS_NAMES",
    "STOP_ARMS_DROPPED",
    "STOP_EQUIVALENCE",
    "STOP_MAX",
    "STOP_NAMES",
    "STOP_SUPERIORITY",
    "SUPERIOR",
    "TrialResults",
    "Truth",
]
