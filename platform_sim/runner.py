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

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .backends import DEFAULT_CHUNK_SIZE, Backend, LocalProcesses, tune_allocator
from .oc import Summarizer
from .results import TrialResults
from .spec import Spec
from .streams import Streams, TrialStreams
from .summary import Summary


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


def run_chunk(spec: Spec, streams: TrialStreams, trace=None) -> TrialResults:
    """Simulate the trials of ``streams`` (one per trial index) with the design's family.

    The patients and their potential outcomes depend on the scenario only, so every design
    run with the same seed sees the same patients (common random numbers); the design's own
    randomness (allocation) comes from the trials' randomization streams. A
    :class:`~platform_sim.trace.Trace` records one trial's analyses and patients.
    """
    return spec.family.simulate(spec.compiled, streams, trace)


def summarizer(spec: Spec) -> Summarizer:
    """The function reducing a chunk's results to its :class:`~platform_sim.summary.Summary`."""
    return Summarizer(spec)


@dataclass
class ChunkOutput:
    """What a finished chunk sends back: its summary, its per-trial records when asked for, and the
    seconds it took."""

    chunk: Chunk
    summary: Summary
    results: TrialResults | None
    seconds: float


def simulate_chunk(reduce, seed: int, chunk: Chunk, records: bool) -> ChunkOutput:
    """Simulate ``chunk`` of the run with master ``seed`` and reduce it with ``reduce`` (see
    :func:`summarizer`, which carries the spec). The function every backend runs."""
    start = time.perf_counter()
    tune_allocator()
    results = run_chunk(reduce.spec, chunk_streams(seed, chunk))
    summary = reduce(results)
    return ChunkOutput(chunk, summary, results if records else None, time.perf_counter() - start)


def simulate_chunks(reduce, seed: int, chunks: Sequence[Chunk], records: bool) -> list[ChunkOutput]:
    """:func:`simulate_chunk` of each of ``chunks`` in turn: one task that runs several chunks, for
    backends whose every task costs more than a local process's (see :func:`tasks_of`)."""
    return [simulate_chunk(reduce, seed, chunk, records) for chunk in chunks]


def tasks_of(chunks: Sequence[Chunk], workers: int, chunks_per_task: int) -> list[list[Chunk]]:
    """``chunks`` cut into tasks of up to ``chunks_per_task`` consecutive chunks, but never so few
    tasks that a worker would have fewer than two (small runs keep one chunk per task)."""
    chunks = list(chunks)
    per_task = max(1, min(chunks_per_task, len(chunks) // max(2 * workers, 1)))
    return [chunks[i : i + per_task] for i in range(0, len(chunks), per_task)]


def stream(
    reduce, seed: int, chunks: Sequence[Chunk], backend: Backend | None = None, records: bool = False
) -> Iterator[ChunkOutput]:
    """Run ``chunks`` on ``backend`` (in this process when None) and yield their outputs in chunk
    order, keeping at most two tasks per worker in flight (memory stays flat however many
    chunks there are). A task is one chunk, or a few consecutive ones on a backend that asks for
    them (``backend.chunks_per_task``: Dask); the outputs are the same. Closing the iterator cancels
    the tasks not yet started."""
    backend = Backend() if backend is None else backend
    shared = backend.share(reduce)
    window = max(2 * backend.workers, 1)
    per_task = getattr(backend, "chunks_per_task", 1)
    todo: Iterator = iter(tasks_of(chunks, backend.workers, per_task) if per_task > 1 else chunks)
    fn = simulate_chunks if per_task > 1 else simulate_chunk
    pending: deque = deque()
    try:
        for task in todo:
            pending.append(backend.submit(fn, shared, seed, task, records))
            if len(pending) >= window:
                break
        while pending:
            out = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(backend.submit(fn, shared, seed, nxt, records))
            if per_task > 1:
                yield from out
            else:
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
        _ = spec.truth  # computed once here and shipped to the workers with the spec
        with LocalProcesses(workers) as backend:
            return run(spec, n_sims, seed, 1, chunk_size, progress, backend)
    parts = []
    for out in stream(_Records(spec), seed, chunks, executor, records=True):
        parts.append(out.results)
        if progress:
            progress(out.chunk.size)
    return TrialResults.concatenate(parts)


class _Records:
    """A reducer that keeps nothing but the spec: :func:`run` wants the records only."""

    def __init__(self, spec: Spec):
        self.spec = spec

    def __call__(self, results) -> Summary:
        return Summary()
