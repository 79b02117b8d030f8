"""The Python interface: load a design and a scenario, run or compare, then read, plot and report.

::

    import platform_sim as ps

    design = ps.load_design("pioneer_rar")
    scenario = ps.load_scenario("trop2_adc")
    res = ps.run(design, scenario, n_sims=2000, seed=1, workers=2, progress=True)
    res.oc()  # tidy operating characteristics: value, mcse, lower, upper
    res.to_xarray()  # every simulated trial, with named dimensions
    res.report("out/report.html")
    res.save("out/run")  # a run directory, as `platform-sim run --out` writes

    cmp = ps.compare([design, "allcomer_rar"], [scenario, "pioneer_null"], n_sims=2000)
    cmp.plot("paired")
    cmp.report("out/compare.html")

Wherever a design or a scenario is taken, a file path, the name of a shipped file and a model
(:class:`~platform_sim.config.Design`, :class:`~platform_sim.config.Scenario`) all work. A model
returned by :func:`load_design` or :func:`load_scenario` remembers its file while it is unchanged,
so a saved run copies that file byte for byte, comments and sources included; any other model is
written as YAML that loads back into the same model. Everything here goes through the same
functions as the command line (:mod:`platform_sim.runner`, :mod:`platform_sim.oc`,
:mod:`platform_sim.compare`, :mod:`platform_sim.report`), so the numbers agree with it for the
same seed. Problems with the input raise :class:`~platform_sim.config.ConfigError`, one line per
problem, each naming the file, the field and the bad value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .compare import Comparison as _BaseComparison
from .compare import compare as _compare_designs
from .compare import planned_trials as _planned_trials
from .compare import winners as _winners
from .config import (
    DEFAULT_DESIGN,
    DEFAULT_SCENARIO,
    ConfigError,
    Design,
    Problem,
    Scenario,
    Suite,
    expand_designs,
    expand_scenarios,
    load_file,
    resolve,
)
from .config import load_suite as _load_suite
from .config.suites import SUITE_PREFIX
from .results import TrialResults
from .runner import DEFAULT_CHUNK_SIZE
from .spec import Spec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr
    from matplotlib.figure import Figure

__all__ = [
    "Comparison",
    "ConfigError",
    "Design",
    "Results",
    "Scenario",
    "Suite",
    "compare",
    "load_design",
    "load_scenario",
    "load_suite",
    "run",
]

DesignLike = Design | str | Path
ScenarioLike = Scenario | str | Path
Progress = bool | Callable[[int], None]

# --------------------------------------------------------------------------- loading

# The file each model returned by load_design / load_scenario came from, by the model's id; the
# entry keeps the model alive, so its id is not reused while the entry stands. Bounded: the oldest
# entries go first (a model that lost its entry is saved as YAML instead of as a copy).
_SOURCES: dict[int, tuple[Design | Scenario, str]] = {}
_MAX_SOURCES = 4096


def _remember(model: Design | Scenario, path: Path) -> None:
    if len(_SOURCES) >= _MAX_SOURCES:
        _SOURCES.pop(next(iter(_SOURCES)))
    _SOURCES[id(model)] = (model, str(path))


def _source_of(model: Design | Scenario) -> str | None:
    hit = _SOURCES.get(id(model))
    return hit[1] if hit is not None and hit[0] is model else None


def _load(ref: str | Path, kind: str) -> Any:
    if not isinstance(ref, (str, Path)):
        raise TypeError(f"load_{kind} takes a file path or the name of a shipped {kind}, not a {type(ref).__name__}")
    path = resolve(ref, kind)
    model = load_file(path, kind)
    assert isinstance(model, (Design, Scenario))
    _remember(model, path)
    return model


def load_design(name_or_path: str | Path) -> Design:
    """A design, validated: a YAML file, or the name of a shipped design (``platform-sim list``).

    Raises :class:`~platform_sim.config.ConfigError` with every problem of the file."""
    return _load(name_or_path, "design")


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A scenario, validated: a YAML file, or the name of a shipped scenario (``platform-sim list``);
    the population it names is read from its folder or from the shipped populations."""
    return _load(name_or_path, "scenario")


def load_suite(name_or_path: str | Path) -> Suite:
    """A suite of scenarios (the global null among them) and the designs it compares: a file, or the
    name of a shipped suite (``core``). Its ``scenarios``, ``null_scenario`` and ``designs`` are
    references that :func:`compare` takes as they are."""
    return _load_suite(name_or_path)


def _model(ref, kind: str) -> tuple[Any, str | None]:
    """A design or scenario reference as its model and the file it was loaded from (None: made in memory)."""
    model_type = Design if kind == "design" else Scenario
    if isinstance(ref, model_type):
        return ref, _source_of(ref)
    if isinstance(ref, (Design, Scenario)):
        raise ConfigError([Problem(kind, f"expected a {model_type.__name__}, got a {type(ref).__name__}", ref.name)])
    if isinstance(ref, (str, Path)):
        path = resolve(ref, kind)
        return load_file(path, kind), str(path)
    raise ConfigError(
        [
            Problem(
                kind,
                f"expected a file path, a shipped name or a {model_type.__name__}, got a {type(ref).__name__}",
                repr(ref),
            )
        ]
    )


def _bind(design: DesignLike, scenario: ScenarioLike) -> Spec:
    """The spec of a design and a scenario given in any form, every problem of both raised at once."""
    return Spec.from_refs(design, scenario, _model)


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")


@contextmanager
def _progress(progress: Progress, total: int) -> Iterator[Callable[[int], None] | None]:
    """``progress`` as the callback the runner calls with the trials just finished: None for False, the
    function itself, or for True a :mod:`tqdm.auto` bar (a widget in a notebook with ipywidgets, text
    on stderr otherwise), closed at the end."""
    if progress is False or progress is None:
        yield None
        return
    if callable(progress):
        yield progress
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="trial", smoothing=0.1) as bar:
        yield bar.update


# --------------------------------------------------------------------------- one design on one scenario


@dataclass(frozen=True, eq=False)
class Results:
    """The simulated trials of one design on one scenario (what :func:`run` returns).

    ``spec``: the design bound to the scenario (:class:`~platform_sim.spec.Spec`); ``trials``: every
    simulated trial (:class:`~platform_sim.results.TrialResults`, leading axis the trial); ``seed``,
    ``chunk_size``, ``workers`` and ``elapsed_seconds``: how they were made.
    """

    spec: Spec
    trials: TrialResults
    seed: int | None = None
    chunk_size: int | None = None
    workers: int | None = None
    elapsed_seconds: float | None = None
    _oc: Any = field(default=None, init=False, repr=False)

    @property
    def design(self) -> Design:
        return self.spec.design

    @property
    def scenario(self) -> Scenario:
        return self.spec.scenario

    @property
    def truth(self):
        """What is true in the scenario for the design's arms and subgroups
        (:class:`~platform_sim.results.Truth`; ``truth.frame()`` as a table)."""
        return self.spec.truth

    @property
    def n_sims(self) -> int:
        return self.trials.n_trials

    def __repr__(self) -> str:
        return (
            f"Results(design={self.design.name!r}, scenario={self.scenario.name!r}, n_sims={self.n_sims}, "
            f"seed={self.seed}, spec_hash={self.spec.spec_hash!r})"
        )

    def oc(self) -> pd.DataFrame:
        """The operating characteristics as one long table (what ``oc.csv`` holds): one row per
        ``level`` (``trial``, ``arm``, ``subgroup``: arm x subgroup), ``arm``, ``subgroup`` and
        ``metric``, with the estimate ``value``, its Monte Carlo standard error ``mcse``, a 95%
        interval ``lower``-``upper`` (Jeffreys for proportions, value ± 1.96 MCSE otherwise) and ``n``,
        the trials counted. The metrics are defined in :mod:`platform_sim.oc`."""
        if self._oc is None:
            from . import oc

            object.__setattr__(self, "_oc", oc.frame(oc.summarize(self.trials, self.truth)))
        return self._oc.copy()

    def summary(self) -> pd.DataFrame:
        """The trial-level operating characteristics: one row per metric (index) with value, mcse,
        lower and upper."""
        from . import oc

        return oc.trial_table(self.oc())

    def arm_table(self) -> pd.DataFrame:
        """One row per arm: the truth among all patients (``true_value``, ``true_effect``, ``role``),
        then each arm-level metric with its ``_mcse``, ``_lower`` and ``_upper``."""
        from . import oc

        return oc.arm_table(self.oc(), self.truth, bounds=True)

    def subgroup_table(self) -> pd.DataFrame:
        """One row per arm x subgroup: the truth there and the arm x subgroup metrics with their MCSE
        and intervals."""
        from . import oc

        return oc.subgroup_table(self.oc(), self.truth, bounds=True)

    def trial_frame(self) -> pd.DataFrame:
        """One row per simulated trial (what ``trials.parquet`` holds)."""
        return self.trials.trial_frame()

    def arm_frame(self) -> pd.DataFrame:
        """One row per simulated trial x arm (what ``arms.parquet`` holds)."""
        return self.trials.arm_frame()

    def to_xarray(self) -> xr.Dataset:
        """Every simulated trial as an :class:`xarray.Dataset` with named dimensions ``trial``, ``arm``,
        ``stratum``, ``subgroup`` and the family's own (``look``, ``period``); see
        :meth:`~platform_sim.results.TrialResults.to_xarray`. Adds the truth (``true_value``,
        ``true_effect``, ``role``: arm x subgroup) and, as attributes, the design, scenario, seed and
        spec hash."""
        import numpy as np

        truth = self.truth
        dataset = self.trials.to_xarray()
        dataset["true_value"] = (("arm", "subgroup"), np.asarray(truth.value, dtype=float))
        dataset["true_effect"] = (
            ("arm", "subgroup"),
            np.asarray(truth.effect, dtype=float),
            {"scale": truth.effect_scale},
        )
        dataset["role"] = (("arm", "subgroup"), np.asarray(truth.roles, dtype=str))
        dataset.attrs.update(
            {
                "design": self.design.name,
                "scenario": self.scenario.name,
                "seed": -1 if self.seed is None else int(self.seed),
                "spec_hash": self.spec.spec_hash,
                "value_name": truth.value_name,
            }
        )
        return dataset

    def _manifest(self, **fields) -> dict:
        from .rundir import run_manifest

        return run_manifest(
            self.spec,
            seed=self.seed,
            n_sims=self.n_sims,
            chunk_size=self.chunk_size,
            records=True,
            workers=self.workers,
            elapsed_seconds=self.elapsed_seconds,
            **fields,
        )

    def save(self, directory: str | Path) -> Path:
        """Write a run directory (results, design and scenario, ``oc.csv``, ``trials.parquet``,
        ``arms.parquet`` and ``manifest.json``) that ``platform-sim report``, ``platform-sim trial
        --run`` and :func:`platform_sim.rundir.load_run` read like the output of ``run --out``;
        return its path."""
        from .rundir import save_run

        directory = Path(directory)
        save_run(
            directory,
            self.trials,
            self.spec,
            seed=self.seed,
            chunk_size=self.chunk_size,
            workers=self.workers,
            elapsed_seconds=self.elapsed_seconds,
        )
        return directory

    def report(self, path: str | Path, template: str | Path | None = None) -> Path:
        """Write the self-contained HTML report of these results to ``path`` (a file; its folder is
        created) and return the path. The page is the one ``platform-sim report`` builds from a run
        directory; ``template``: a page template of one's own (see ``docs/report.md``)."""
        from .report.build import write_run_report

        return write_run_report(path, self.spec, self.trials, self._manifest(files=[]), template)

    def plot(self, kind: str = "claims", **options) -> Figure:
        """One of the report's figures (see :mod:`platform_sim.plot`): ``claims`` (the claim rate per
        arm x subgroup), ``arms`` (an arm-level metric with its 95% intervals; ``metric=``),
        ``allocation``, ``sample_size``, ``stopping`` or ``convergence``. ``options`` go to the
        plotting function (``ax=`` where it draws one panel)."""
        from . import plot

        functions: dict[str, Callable[..., Figure]] = {
            "claims": plot.claims,
            "arms": plot.arm_metric,
            "allocation": plot.allocation,
            "sample_size": plot.sample_size,
            "stopping": plot.stopping,
            "convergence": plot.convergence,
        }
        if kind not in functions:
            raise ValueError(f"kind {kind!r}: unknown; one of {', '.join(functions)}")
        return functions[kind](self, **options)


def run(
    design: DesignLike = DEFAULT_DESIGN,
    scenario: ScenarioLike = DEFAULT_SCENARIO,
    n_sims: int = 2000,
    seed: int = 1,
    workers: int = 1,
    progress: Progress = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Results:
    """Simulate ``n_sims`` trials of ``design`` on ``scenario`` and return every trial (:class:`Results`).

    ``design`` and ``scenario``: a model, a file path or a shipped name. ``seed``: the master seed; a
    trial's numbers depend only on the seed and its index, not on ``workers`` (local processes) or
    ``chunk_size`` (trials per unit of work), so ``run(d, s, seed=1)`` equals ``platform-sim run
    --design d --scenario s --seed 1``. ``progress``: True for a progress bar (:mod:`tqdm.auto`: a
    widget in a notebook), or a function called with the number of trials just finished.

    Raises :class:`~platform_sim.config.ConfigError` when the design or scenario, or the pair, has a
    problem, and ValueError for a count below 1."""
    from . import runner

    _check_counts(n_sims=n_sims, workers=workers, chunk_size=chunk_size)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number of at least 0, got {seed!r}")
    spec = _bind(design, scenario)
    start = time.perf_counter()
    with _progress(progress, n_sims) as update:
        trials = runner.run(spec, n_sims, seed, workers, chunk_size, progress=update)
    return Results(
        spec,
        trials,
        seed=seed,
        chunk_size=chunk_size,
        workers=workers,
        elapsed_seconds=round(time.perf_counter() - start, 3),
    )


# --------------------------------------------------------------------------- designs compared


@dataclass(eq=False)
class Comparison(_BaseComparison):
    """Designs compared on scenarios (what :func:`compare` returns): the tables of
    :class:`platform_sim.compare.Comparison` (``table``, ``pairs``, ``truth``, ``calibration``,
    ``frontier``, ``sizing``), with figures, the winners and the decision report."""

    chunk_size: int | None = None
    workers: int | None = None
    elapsed_seconds: float | None = None

    def __repr__(self) -> str:
        return (
            f"Comparison(designs={list(self.designs)}, scenarios={list(dict.fromkeys(self.table['scenario']))}, "
            f"n_sims={self.n_sims}, seed={self.seed}, reference={self.reference!r}, "
            f"calibrated={not self.calibration.empty})"
        )

    def winners(self) -> pd.DataFrame:
        """The best design per scenario and metric, with the paired difference from the runner-up
        (:func:`platform_sim.compare.winners`)."""
        return _winners(self)

    def plot(self, kind: str = "paired", scenario: str | None = None, **options) -> Figure:
        """A figure of the comparison (see :mod:`platform_sim.plot`):

        * ``paired``: the forest plot of every design's paired difference from the reference;
        * ``frontier``: power against FWER across thresholds (a calibrated comparison only); with
          ``scenario``, that scenario's panel alone;
        * ``claims``: who is claimed where on ``scenario`` (default: the first scenario that is not the
          null), one panel per design.

        ``options`` go to the plotting function (``metrics=``, ``ax=``...)."""
        from . import plot

        if kind == "paired":
            return plot.paired(self, **options)
        if kind == "frontier":
            return plot.frontier(self, scenario=scenario, **options)
        if kind == "claims":
            return plot.claims_by_subgroup(self, scenario=scenario, **options)
        raise ValueError(f"kind {kind!r}: unknown; one of paired, frontier, claims")

    def report(self, path: str | Path, template: str | Path | None = None) -> Path:
        """Write the decision report (the page ``platform-sim compare --report`` writes) to ``path`` and
        return the path; ``template``: a page template of one's own (see ``docs/report.md``)."""
        from .report.build import comparison_manifest, write_compare_report

        manifest = comparison_manifest(
            self, chunk_size=self.chunk_size, workers=self.workers, elapsed_seconds=self.elapsed_seconds
        )
        return write_compare_report(path, self, manifest, template)


def _references(items, kind: str) -> list:
    """Designs or scenarios as :func:`platform_sim.compare.compare` takes them: ``suite:NAME`` expanded,
    a model loaded by :func:`load_design` or :func:`load_scenario` and unchanged given by its file (so
    the tables and copies name it as the command line does), any other model as it is."""
    if isinstance(items, (str, Path, Design, Scenario)):
        items = [items]
    expand = expand_designs if kind == "design" else expand_scenarios
    out: list = []
    for item in items:
        if isinstance(item, str) and item.startswith(SUITE_PREFIX):
            out.extend(expand([item]))
        elif isinstance(item, (Design, Scenario)):
            out.append(_source_of(item) or item)
        else:
            out.append(item)
    return out


def compare(
    designs: DesignLike | Sequence[DesignLike],
    scenarios: ScenarioLike | Sequence[ScenarioLike],
    n_sims: int = 2000,
    seed: int = 1,
    workers: int = 1,
    progress: Progress = False,
    *,
    reference: DesignLike | None = None,
    null_scenario: ScenarioLike | None = None,
    target_fwer: float | None = None,
    equal: str = "none",
    frontier: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Comparison:
    """Run every design on every scenario with the same simulated patients (common random numbers)
    and compare them on one yardstick (:func:`platform_sim.compare.compare`, as ``platform-sim
    compare``).

    ``designs``, ``scenarios``: models, files, shipped names or ``suite:NAME`` (the suite's designs or
    scenarios). ``reference``: the design the others' paired differences are taken from (default:
    the first). ``null_scenario`` and ``target_fwer``: calibrate every design's decision threshold so
    that P(any claim) on the null scenario is at most the target, then compare; ``frontier``: also
    run thresholds around the calibrated one for the power-versus-FWER frontier. ``equal``: ``max_n``
    or ``duration`` sizes every design like the reference first. ``progress``: as in :func:`run`.

    Raises :class:`~platform_sim.config.ConfigError`, before anything runs, with every problem: a
    design that does not fit a scenario, two designs or scenarios with the same name, a design or
    scenario listed twice, a bad option."""
    _check_counts(n_sims=n_sims, workers=workers, chunk_size=chunk_size)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number of at least 0, got {seed!r}")
    design_refs, scenario_refs = _references(designs, "design"), _references(scenarios, "scenario")
    null_ref = None if null_scenario is None else _references(null_scenario, "scenario")[0]
    if null_ref is not None and not isinstance(null_ref, (str, Path)):
        # the same object among the scenarios: the same reference
        null_ref = next((r for r in scenario_refs if r is null_ref), null_ref)
    if isinstance(reference, (Design, Scenario)):
        reference = _references(reference, "design")[0]
    total = _planned_trials(len(design_refs), len(scenario_refs), n_sims, null_ref is not None, frontier)
    start = time.perf_counter()
    with _progress(progress, total) as update:
        base = _compare_designs(
            design_refs,
            scenario_refs,
            n_sims,
            seed,
            workers,
            chunk_size,
            reference,
            update,
            null_scenario=null_ref,
            target_fwer=target_fwer,
            equal=equal,
            frontier=frontier,
        )
    values = {f.name: getattr(base, f.name) for f in fields(_BaseComparison)}
    return Comparison(
        **values, chunk_size=chunk_size, workers=workers, elapsed_seconds=round(time.perf_counter() - start, 3)
    )
