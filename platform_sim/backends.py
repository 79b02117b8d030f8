"""Where simulated chunks run: in this process, on local worker processes, or on a Dask cluster.

Every backend runs the same pure function on the same chunk seeds, and the runner
consumes the results in chunk order, so the numbers are bit-for-bit the same on
all of them and for any number of workers. A backend only has to

* ``share(obj)``: make a large argument (the design and scenario) available to the
  workers once, returning what to pass to ``submit`` in its place;
* ``submit(fn, *args)``: start ``fn(*args)`` and return a future (``result()``, ``cancel()``);
* ``close()``.

The Dask backend (``dask.distributed``, installed by the extra ``platform-sim[dask]``)
either starts a local cluster of worker processes (``LocalCluster``, one thread each) or
connects to a running scheduler; a worker that dies has its chunks rerun elsewhere by
Dask, with the same result.

Every process that simulates keeps the memory of its temporary arrays for the next chunk
(:func:`tune_allocator`).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections import deque
from concurrent.futures import CancelledError
from concurrent.futures.process import BrokenProcessPool

__all__ = [
    "BACKENDS",
    "DEFAULT_CHUNK_SIZE",
    "Backend",
    "BackendError",
    "InProcess",
    "LocalProcesses",
    "DaskBackend",
    "open_backend",
    "tune_allocator",
]

BACKENDS = ("local", "dask")
#: Simulated trials per chunk unless asked otherwise (the runner's unit of work; results do not depend on it).
DEFAULT_CHUNK_SIZE = 500


#: glibc's malloc in a simulating process: arrays up to this size come from the heap, not from
#: memory mapped for each (a chunk of 500 trials of the core design holds arrays of 8 MB; larger
#: ones stay mapped, so that a hole they leave in the heap cannot waste much) ...
MMAP_THRESHOLD = 16 * 2**20
#: ... and the heap keeps up to this much free memory instead of returning it to the system.
TRIM_THRESHOLD = 512 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, <malloc.h>
_ALLOCATOR_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
_tuned: bool | None = None


def tune_allocator() -> bool:
    """Let this process keep the memory of its temporary arrays from one chunk to the next.

    A chunk allocates and frees arrays of a few MiB (its trials' patients, outcomes and states).
    By default glibc maps memory for each such array and unmaps it when freed; the system then
    zero-fills every page on first use, page by page, in every chunk: on the core design, a sixth
    of the CPU time of a run of 4,000 trials. With the mmap threshold at :data:`MMAP_THRESHOLD`
    and the trim threshold at :data:`TRIM_THRESHOLD`, the arrays come from the heap and freed
    memory is reused. The run's peak memory is the same: what a process keeps is at most what its
    largest chunk needed. Results do not change. numpy's requests for transparent huge pages are
    switched off in the process (:func:`_no_huge_pages`).

    Done once per process, when it simulates its first chunk (:func:`platform_sim.runner.simulate_chunk`).
    Nothing is changed off glibc, or when the environment sets ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` (that choice is kept). Returns whether the settings are in force.
    """
    global _tuned
    if _tuned is None:
        _tuned = _set_malloc()
    return _tuned


def _set_malloc() -> bool:
    if not sys.platform.startswith("linux") or any(name in os.environ for name in _ALLOCATOR_ENV):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; fixing the mmap threshold also stops glibc from adjusting it
    if not (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1):
        return False
    _no_huge_pages()
    return True


def _no_huge_pages() -> None:
    """Stop numpy from asking for transparent huge pages for its large arrays (madvise), which it
    would now do on the heap: when the heap grew, the system's compaction of huge pages stalled a
    run by up to 0.8 s of system time (pioneer_platform's first 400 trials); on memory that is
    reused they gain about 1%."""
    import numpy

    core = getattr(numpy, "_core", None) or getattr(numpy, "core", None)  # numpy 2, numpy 1
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if callable(switch):
        switch(False)


class BackendError(RuntimeError):
    """A backend cannot be started (Dask not installed, scheduler unreachable)."""


class _Deferred:
    """A future run in the calling thread when its result is asked for."""

    def __init__(self, fn, args):
        self._fn, self._args, self._done, self._value = fn, args, False, None

    def result(self):
        if not self._done:
            self._value, self._done = self._fn(*self._args), True
            self._fn = self._args = None
        return self._value

    def cancel(self) -> bool:
        self._fn = self._args = None
        return True


class Backend:
    """Runs chunks in this process, one at a time (see the module docstring)."""

    workers = 1
    name = "in-process"

    def share(self, obj):
        return obj

    def submit(self, fn, *args):
        return _Deferred(fn, args)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


InProcess = Backend


class LocalProcesses(Backend):
    """A pool of ``workers`` local processes.

    Each worker has a connection (a socket pair) of its own to this process, which runs one task on
    it at a time and reads its result from it. A worker that dies, even in the middle of sending a
    result (killed by the system out of memory, or by hand), closes the only other end of its
    connection: this process reads the end of the connection or sees the process gone, and the
    pool reports ``BrokenProcessPool`` (which the command line turns into the resume command). A
    pool whose workers share one result pipe, as ``concurrent.futures.ProcessPoolExecutor``'s do,
    would wait for ever on the rest of a result cut in two. Workers ignore SIGINT: Ctrl-C reaches
    this process, which stops them when it closes the pool.
    """

    def __init__(self, workers: int):
        import multiprocessing

        self.workers = workers
        self.name = f"{workers} local processes"
        self._context = multiprocessing.get_context()
        self._queue: deque[_Task] = deque()  # submitted, not yet sent to a worker
        self._idle: list[_Worker] = []
        self._busy: dict[_Worker, _Task] = {}
        self._broken: str | None = None
        self._closed = False
        for _ in range(workers):
            mine, theirs = self._context.Pipe(duplex=True)
            # this process's ends of the connections, this one's and those of the workers started
            # before, which a forked worker inherits, are closed in it: a worker whose result cannot
            # be read, as this process has gone, must find its connection closed
            others = [mine, *(w.conn for w in self._idle)]
            process = self._context.Process(target=_serve, args=(theirs, others), daemon=True)
            process.start()
            theirs.close()  # the worker's end lives only in the worker: its death closes it
            self._idle.append(_Worker(process, mine))

    def submit(self, fn, *args) -> _Task:
        if self._broken is not None:
            raise BrokenProcessPool(self._broken)
        if self._closed:
            raise RuntimeError("the pool is closed")
        task = _Task(self, fn, args)
        self._queue.append(task)
        self._dispatch()
        return task

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            task = self._queue.popleft()
            worker = self._idle.pop()
            self._busy[worker] = task  # before sending: whatever happens next, close() stops it
            try:
                worker.conn.send((task.fn, task.args))  # serialized whole before anything is written
            except (OSError, EOFError):  # the worker has died
                self._fail(worker)
            except Exception as exc:  # arguments that cannot be sent: this task's error, nothing written
                del self._busy[worker]
                self._idle.append(worker)
                task.finish(False, exc)
                continue
            except BaseException:  # Ctrl-C, perhaps part-way through the message: the connection is lost
                self._give_up("a task was being sent")
                raise
            task.fn = task.args = None

    def _wait(self, task: _Task) -> None:
        """Read results until ``task`` has one (or the pool is broken or closed)."""
        from multiprocessing.connection import wait

        while not task.done:
            if self._broken is not None:
                raise BrokenProcessPool(self._broken)
            if not self._busy:  # nothing running can finish it: the pool was closed
                raise CancelledError()
            busy = list(self._busy)
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in busy:
                if worker.conn in ready or worker.conn.poll():
                    try:
                        ok, value = worker.conn.recv()
                    except (OSError, EOFError):  # closed, or closed in the middle of a message
                        self._fail(worker)
                    except Exception as exc:  # read whole, but not rebuilt (an exception class's own
                        ok, value = False, exc  # arguments): the connection is still in step
                    except BaseException:  # Ctrl-C part-way through a message: the connection is lost
                        self._give_up("a result was being read")
                        raise
                    self._idle.append(worker)
                    self._busy.pop(worker).finish(ok, value)
                elif worker.process.sentinel in ready:
                    self._fail(worker)
            self._dispatch()

    def _fail(self, worker: _Worker) -> None:
        worker.process.join(1.0)
        code = worker.process.exitcode
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exit code {code}"
        self._broken = f"pid {worker.process.pid}, {how} while it ran a task"
        self._terminate()
        raise BrokenProcessPool(self._broken)

    def _give_up(self, what: str) -> None:
        self._broken = f"interrupted while {what}"
        self._terminate()

    def _terminate(self) -> None:
        """Stop every worker; the tasks not done get BrokenProcessPool (a broken pool) or
        CancelledError (a closed one)."""
        for worker in [*self._idle, *self._busy]:
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in [*self._idle, *self._busy]:
            worker.process.join(5.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        for task in [*self._queue, *self._busy.values()]:
            if not task.done:
                task.finish(False, BrokenProcessPool(self._broken) if self._broken else CancelledError())
        self._idle, self._busy = [], {}
        self._queue.clear()

    def close(self) -> None:
        """Stop the workers: those idle are asked to finish, those still running a task (a run
        interrupted or failed) are terminated, as their results are no longer wanted."""
        if self._closed:
            return
        self._closed = True
        for worker in self._idle:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in self._idle:
            worker.process.join(5.0)
        self._terminate()


class _Worker:
    __slots__ = ("process", "conn")

    def __init__(self, process, conn):
        self.process, self.conn = process, conn


class _Task:
    """A :class:`LocalProcesses` task: ``result()`` waits for it (reading other workers' results
    meanwhile), ``cancel()`` withdraws it if no worker has it yet."""

    def __init__(self, pool: LocalProcesses, fn, args):
        self.pool, self.fn, self.args = pool, fn, args
        self.done, self.ok = False, False
        self.value: object = None

    def finish(self, ok: bool, value) -> None:
        self.done, self.ok, self.value = True, ok, value

    def result(self):
        if not self.done:
            self.pool._wait(self)
        if not self.ok:
            raise self.value
        return self.value

    def cancel(self) -> bool:
        if self.done:
            return False
        try:
            self.pool._queue.remove(self)
        except ValueError:  # a worker has it
            return False
        self.done, self.ok, self.value = True, False, CancelledError()
        return True


def _serve(conn, others) -> None:
    """A worker's loop: run each task received on ``conn`` and send back (True, result) or
    (False, the exception it raised); stop on None, or when its parent process has gone (found
    within a second when idle, or when a result cannot be sent). The parent is the main process,
    or with the forkserver start method the fork server, which ends with it. ``others``: the main
    process's ends of the connections, closed here."""
    import traceback

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    for other in others:
        other.close()
    while True:
        while not conn.poll(1.0):
            if os.getppid() != parent:  # orphaned: the run was killed
                return
        try:
            task = conn.recv()
        except (OSError, EOFError):
            return
        if task is None:
            return
        fn, args = task
        try:
            reply = (True, fn(*args))
        except BaseException as exc:  # sent back to be raised in the main process
            exc.add_note("".join(traceback.format_exception(exc)).rstrip())
            reply = (False, exc)
        del task, fn, args
        try:
            conn.send(reply)  # serialized whole before anything is written
        except (OSError, EOFError):  # the main process has gone
            return
        except Exception as exc:  # a result or an exception that cannot be sent back
            what = "result" if reply[0] else f"exception ({reply[1]!r})"
            error = RuntimeError(f"the task's {what} cannot be sent back to the main process: {exc}")
            if not reply[0]:
                error.add_note(str(getattr(reply[1], "__notes__", [""])[-1]))
            try:
                conn.send((False, error))
            except (OSError, EOFError):
                return
        del reply


class DaskBackend(Backend):
    """A Dask cluster: a new local one with ``workers`` single-threaded processes, or the one whose
    scheduler listens at ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``)."""

    #: Consecutive chunks sent as one task (fewer when a run has few chunks, see
    #: :func:`platform_sim.runner.tasks_of`): a Dask task costs the client, the scheduler and the
    #: worker a few milliseconds of CPU (submitting it, its bookkeeping, fetching its output), a
    #: chunk of 250 trials of the core design about 60 ms; chunks are still written and merged one
    #: by one, with the same results.
    chunks_per_task = 4

    def __init__(self, workers: int = 1, scheduler: str | None = None, timeout: float = 10.0):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # an optional dependency: the extra [dask]
            raise BackendError(
                f"the Dask backend needs dask.distributed, which cannot be imported ({exc}); "
                'install it with: pip install "platform-sim[dask]"'
            ) from None
        self._cluster = None
        try:
            if scheduler is None:
                import dask

                with dask.config.set(_LOCAL_CLUSTER_CONFIG):
                    self._cluster = LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        scheduler_kwargs={"dashboard": False},
                        dashboard_address=":0",
                        silence_logs=logging.CRITICAL,
                    )
                    # results come straight from the worker that holds them, not through the scheduler
                    self._client = Client(self._cluster, direct_to_workers=True)
                self.name = f"Dask local cluster, {workers} worker processes"
            else:
                self._client = Client(scheduler, timeout=timeout)
                self.name = f"Dask scheduler {scheduler}"
        except OSError as exc:
            if self._cluster is not None:
                self._cluster.close()
            where = f"the scheduler at {scheduler}" if scheduler else "a local Dask cluster"
            raise BackendError(f"cannot connect to {where}: {exc}") from None
        n = len(self._client.scheduler_info().get("workers", {}))
        self.workers = max(n, 1)
        self._shared: dict[int, tuple[object, object]] = {}

    @property
    def client(self):
        return self._client

    def share(self, obj):
        """A future of ``obj`` for the tasks that use it. It is the result of a task rather than
        scattered data, so the scheduler can compute it again when the worker holding it dies (a
        scattered object whose only copy was on a killed worker is lost, and every task needing it
        is cancelled)."""
        held = self._shared.get(id(obj))
        if held is None or held[0] is not obj:
            held = (obj, self._client.submit(_identity, obj, pure=False))
            self._shared[id(obj)] = held
        return held[1]

    def submit(self, fn, *args):
        return self._client.submit(fn, *args, pure=False)

    def close(self) -> None:
        self._shared.clear()
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


#: Dask settings of the local cluster that differ from Dask's defaults, for short numeric tasks on
#: a few cores (each measured on the core design, two workers on two cores):
#:
#: * ``MALLOC_TRIM_THRESHOLD_`` unset: Dask sets 65536 in every worker, which also fixes glibc's
#:   mmap threshold, so that every temporary numpy array above 128 KiB is mapped and unmapped
#:   again; the page faults that follow cost the workers a third more CPU per simulated trial;
#: * no statistical profiler sampling the running task's stack every 10 ms;
#: * the event-loop latency tick every second instead of every 20 ms, the system monitor every 5 s
#:   instead of 0.5 s, the memory monitor every second instead of 0.1 s: together they kept an idle
#:   cluster at 3% of a core in this process and 1.5% in each worker (now 0.6% and 0.3%), time
#:   taken from the workers of a busy machine in proportion to the run's length.
_LOCAL_CLUSTER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def _identity(obj):
    return obj


def open_backend(kind: str = "local", workers: int = 1, scheduler: str | None = None) -> Backend:
    """The backend for the command-line options ``--backend``, ``--workers`` and ``--scheduler``
    (a scheduler address implies Dask)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if scheduler is not None or kind == "dask":
        return DaskBackend(workers, scheduler)
    if kind != "local":
        raise ValueError(f"unknown backend {kind!r}; expected one of {BACKENDS}")
    return LocalProcesses(workers) if workers > 1 else Backend()
