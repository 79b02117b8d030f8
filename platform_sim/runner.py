"""Split simulated trials into seeded chunks and run them on any backend.

Chunk ``i`` simulates ``chunk_size`` consecutive trials (the last chunk fewer).
Every random number of trial ``t`` is keyed by ``(seed, t)``
(:mod:`platform_sim.streams`), so a trial's results depend only on the seed, its
index and the spec: not on the chunk size, the backend
(:mod:`platform_sim.backends`) or the number of workers. Chunks are consumed in
order, so summaries merged chunk by chunk are identical too. :func:`stream` yields
each chunk's :class:`~platform_sim.summary.Summary` (and, on request, its
per-trial records) as it finishes, with a bounded number of chunks in flight, so a
run of any length holds only a few chunks in memory.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .backends import Backend, LocalProcesses
from .compiled import CompiledDesign
from .config import Spec
from .engine import simulate
from .results import TrialResults
from .streams import RANDOMIZATION, Streams, TrialStreams
from .stratified import Pool, simulate_strata
from .summary import Summary

DEFAULT_CHUNK_SIZE = 500


def chunk_sizes(n_sims: int, chunk_size: int) -> list[int]:
    if n_sims < 1:
        raise ValueError(f"n_sims must be at least 1, got {n_sims}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    full, rest = divmod(n_sims, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


@dataclass(frozen=True)
class Chunk:
    """One seeded chunk of a run: its index in the seed sequence, its size, and the number of its
    first trial in the run."""

    index: int
    size: int
    first: int


def plan_chunks(n_sims: int, chunk_size: int, start: Chunk | None = None) -> list[Chunk]:
    """The chunks of ``n_sims`` trials; after ``start`` (the last chunk of an existing run) when
    growing it, so seeds and trial numbers continue that run's sequence."""
    index, first = (0, 0) if start is None else (start.index + 1, start.first + start.size)
    out = []
    for size in chunk_sizes(n_sims, chunk_size):
        out.append(Chunk(index, size, first))
        index, first = index + 1, first + size
    return out


def chunk_streams(seed: int, chunk: Chunk) -> TrialStreams:
    """The random numbers of the trials of ``chunk`` (trial indices ``first .. first + size - 1``)."""
    return Streams(seed).for_trials(np.arange(chunk.first, chunk.first + chunk.size))


def _kept(spec: Spec, trace, characteristics: list[str] | None) -> dict:
    """Arguments of ``enrol`` for a chunk: a traced chunk keeps its screened patients with every
    characteristic drawn. Each characteristic and screening result has its own random stream, so
    this does not change who is randomized or their outcomes."""
    if trace is None:
        return {"keep_cohort": characteristics is not None, "characteristics": characteristics}
    return {"keep_cohort": True, "characteristics": list(spec.patients.population.names)}


def run_chunk(spec: Spec, streams: TrialStreams, trace=None):
    """Simulate the trials of ``streams`` (one per trial index).

    The patients and their potential outcomes depend on the scenario only, so every design
    run with the same seed sees the same patients (common random numbers); the design's own
    randomness (allocation) comes from the trials' randomization streams. A
    :class:`~platform_sim.trace.Trace` records one trial's analyses and patients.
    """
    n_trials = streams.n_trials
    if spec.design.platform is not None:
        return _run_platform_chunk(spec, streams, trace)
    design = CompiledDesign.from_spec(spec)
    if spec.strata is not None:
        return _run_stratified_chunk(spec, design, streams, trace)
    enrolled = spec.patients.enrol(
        streams, design.max_n, spec.design.endpoint.name, list(design.treatments),
        times=True, **_kept(spec, trace, None),
    )
    if trace is not None:
        trace.enrolled = enrolled
    results = simulate(design, enrolled.outcomes, streams, trace)
    used = design.randomized_n[results.stop_look] - 1  # last patient position the trial reached
    rows = np.arange(n_trials)
    results.n_screened = enrolled.screened_index[rows, used] + 1
    results.duration_months = enrolled.randomized_at[rows, used] + _assessment_months(spec)
    return results


def _assessment_months(spec: Spec) -> float:
    return spec.patients.outcomes.assessment_months(spec.design.endpoint.name)


_MAX_POOL_FACTOR = 64


def _pool_size(plan, max_n: int) -> int:
    """Randomizable patients a trial is expected to scan, with a margin: until the trial's maximum
    sample size at the strata's joint share, or until the slowest capped stratum fills."""
    share = max(1.0 - plan.unclassified, 1e-3)
    until_max = max_n / share
    fill = np.where(plan.prevalence > 0, np.minimum(plan.caps, max_n) / np.maximum(plan.prevalence, 1e-12), np.inf)
    expected = min(until_max, float(fill.max())) if np.isfinite(fill).all() else until_max
    return int(math.ceil(1.3 * expected)) + 128


def _run_stratified_chunk(spec: Spec, design: CompiledDesign, streams: TrialStreams, trace=None) -> TrialResults:
    """A chunk of a stratified design. Each trial draws from a pool of randomizable patients
    large enough for its strata; if a trial exhausts it, the chunk is rerun on a pool twice as
    large (the same patients and random numbers, extended), so results do not depend on the
    pool size."""
    plan = spec.strata
    n_trials = streams.n_trials
    hierarchical = None
    if spec.design.strata.analysis == "hierarchical":
        from .posterior.hierarchical import HierarchicalPrior
        from .posterior.hierarchical_fast import engine_grid

        bo = spec.design.strata.borrowing
        prior = HierarchicalPrior() if bo is None else HierarchicalPrior(
            mu_a=bo.mu_a, mu_b=bo.mu_b, log_kappa_mean=bo.log_kappa_mean, log_kappa_sd=bo.log_kappa_sd)
        hierarchical = (prior, engine_grid(prior))
    size = _pool_size(plan, design.max_n)
    while True:
        enrolled = spec.patients.enrol(
            streams, size, spec.design.endpoint.name, list(design.treatments),
            times=True, **_kept(spec, trace, list(plan.markers)),
        )
        rows = np.arange(n_trials)[:, None]
        observed = enrolled.cohort.observed[rows, enrolled.screened_index]
        pool = Pool(enrolled.outcomes, plan.classifier(observed),
                    streams.uniform(RANDOMIZATION, "randomization:route", 0, size),
                    streams.uniform(RANDOMIZATION, "randomization:arm", 0, size))
        if trace is not None:
            trace.events.clear()
        results, strata, scanned = simulate_strata(design, plan, pool, streams, hierarchical, trace)
        if (scanned < size).all() or size >= _MAX_POOL_FACTOR * design.max_n:
            break
        size *= 2
    if trace is not None:
        trace.enrolled = enrolled
    last = np.maximum(scanned - 1, 0)
    results.n_screened = np.where(scanned > 0, enrolled.screened_index[np.arange(n_trials), last] + 1, 0)
    results.duration_months = enrolled.randomized_at[np.arange(n_trials), last] + _assessment_months(spec)
    strata.n_unrouted = scanned - results.n.sum(axis=1)
    results.strata = strata
    return results


def _run_platform_chunk(spec: Spec, streams: TrialStreams, trace=None):
    """A chunk of a platform design over calendar time. Each trial gets every randomizable patient
    who arrives before the maximum duration; a longer stream is drawn (the same patients, extended)
    when some trial needs more, so results do not depend on the first guess."""
    from .config.timeline_checks import expected_randomizable
    from .timeline import PlatformDesign, PlatformPool, simulate_platform

    pd = PlatformDesign.from_spec(spec)
    plan = spec.strata
    n_trials = streams.n_trials
    expected = expected_randomizable(spec.scenario.population, pd.max_duration)
    size = int(math.ceil(1.2 * expected + 5.0 * math.sqrt(expected))) + 64
    while True:
        enrolled = spec.patients.enrol(
            streams, size, spec.design.endpoint.name, list(pd.treatments), times=True,
            **_kept(spec, trace, None if plan is None else list(plan.markers)),
        )
        if (enrolled.randomized_at[:, -1] > pd.max_duration).all():
            break
        size *= 2
    rows = np.arange(n_trials)[:, None]
    order = np.argsort(enrolled.randomized_at, axis=1, kind="stable")
    if plan is None:
        stratum = np.zeros((n_trials, size), dtype=np.int16)
    else:
        observed = enrolled.cohort.observed[rows, enrolled.screened_index]
        mask = plan.classifier(observed).astype(np.int64)
        stratum = np.where(mask > 0, np.log2(np.maximum(mask, 1)).round(), -1).astype(np.int16)[rows, order]
    u = streams.uniform(RANDOMIZATION, "randomization:arm", 0, size)
    dropout = (np.full((n_trials, size), np.inf) if enrolled.dropout is None
               else enrolled.dropout[rows, order].astype(np.float64))
    pool = PlatformPool(
        arrive=np.ascontiguousarray(enrolled.randomized_at[rows, order], dtype=np.float64),
        stratum=np.ascontiguousarray(stratum),
        u=np.ascontiguousarray(u[rows, order]),
        outcomes=np.ascontiguousarray(enrolled.outcomes[rows, order], dtype=np.float32),
        dropout=np.ascontiguousarray(dropout),
    )
    if trace is not None:
        trace.enrolled, trace.order = enrolled, order[trace.row]
        trace.keep(arrive=pool.arrive, stratum=pool.stratum, dropout=pool.dropout)
    results = simulate_platform(pd, pool, trace)
    screened = np.where(pool.arrive <= results.enrolment_end[:, None], enrolled.screened_index[rows, order], -1)
    results.n_screened = screened.max(axis=1) + 1
    return results


def summarizer(spec: Spec):
    """The function reducing a chunk's results to its :class:`~platform_sim.summary.Summary`."""
    if spec.design.platform is not None:
        from .platform_metrics import Summarizer
    else:
        from .metrics import Summarizer
    return Summarizer(spec)


@dataclass
class ChunkOutput:
    """What a finished chunk sends back: its summary, its per-trial records when asked for, and the
    seconds it took."""

    chunk: Chunk
    summary: Summary
    results: object | None
    seconds: float


def simulate_chunk(reduce, seed: int, chunk: Chunk, records: bool) -> ChunkOutput:
    """Simulate ``chunk`` of the run with master ``seed`` and reduce it with ``reduce`` (see
    :func:`summarizer`, which carries the spec). The function every backend runs."""
    start = time.perf_counter()
    results = run_chunk(reduce.spec, chunk_streams(seed, chunk))
    summary = reduce(results)
    return ChunkOutput(chunk, summary, results if records else None, time.perf_counter() - start)


def stream(reduce, seed: int, chunks: Sequence[Chunk], backend: Backend | None = None,
           records: bool = False) -> Iterator[ChunkOutput]:
    """Run ``chunks`` on ``backend`` (in this process when None) and yield their outputs in chunk
    order, keeping at most two chunks per worker in flight (memory stays flat however many
    chunks there are). Closing the iterator cancels the chunks not yet started."""
    backend = Backend() if backend is None else backend
    shared = backend.share(reduce)
    window = max(2 * backend.workers, 1)
    todo = iter(chunks)
    pending: deque = deque()
    try:
        for chunk in todo:
            pending.append(backend.submit(simulate_chunk, shared, seed, chunk, records))
            if len(pending) >= window:
                break
        while pending:
            out = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(backend.submit(simulate_chunk, shared, seed, nxt, records))
            yield out
    finally:
        for fut in pending:
            fut.cancel()


def run(
    spec: Spec,
    n_sims: int,
    seed: int,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
    executor: Backend | None = None,
):
    """Simulate ``n_sims`` trials of ``spec`` and return every trial's results (for summaries
    of long runs without per-trial records, use :func:`stream`). ``progress(k)`` is called as k
    more trials finish. ``executor``, a :mod:`~platform_sim.backends` backend to reuse across
    runs, replaces the ``workers`` local processes this call would otherwise start and stop."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    chunks = plan_chunks(n_sims, chunk_size)
    if executor is None and workers > 1 and len(chunks) > 1:
        _ = spec.patients, spec.strata  # computed once here and shipped to the workers with the spec
        with LocalProcesses(workers) as backend:
            return run(spec, n_sims, seed, 1, chunk_size, progress, backend)
    parts = []
    for out in stream(_Records(spec), seed, chunks, executor, records=True):
        parts.append(out.results)
        if progress:
            progress(out.chunk.size)
    return type(parts[0]).concatenate(parts)


class _Records:
    """A reducer that keeps nothing but the spec: :func:`run` wants the records only."""

    def __init__(self, spec: Spec):
        self.spec = spec

    def __call__(self, results) -> Summary:
        return Summary()
