"""Runs that survive interruption: chunk by chunk into an output directory, resumed and grown.

A run with ``--out DIR`` writes ``DIR/manifest.json`` first, marked incomplete, with
what fixes the random numbers (spec hash, seed, chunk size and the *segments*: the
first run's number of trials, then each ``--grow``). Each finished chunk is written
under ``DIR/chunks/`` (its per-trial records, when kept, then its summary: the
summary's existence marks the chunk as done), each file atomically, and the sha256 of
each file is recorded in the manifest (``checksums``) as soon as it is written. At the
end the tables are written and the manifest is marked complete.

Resuming reruns only the chunks without a valid summary, and every chunk whose files do
not match their recorded checksums (edited, truncated, copied from another run, or left
without a checksum by a run killed between writing a chunk and recording it), with a
warning naming the file; growing appends a segment whose chunks continue the seed
sequence. Chunk summaries are merged in chunk order
whether they were read back or just computed, so a resumed or grown run gives
exactly the numbers of an uninterrupted run of the same chunks.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, Problem
from .rundir import (
    MANIFEST_FILE,
    atomic_write,
    chunk_files,
    chunk_problem,
    load_results,
    manifest_json,
    read_chunk,
    remove_leftovers,
    run_chunks,
    write_chunk,
)
from .runner import Chunk, stream, summarizer
from .spec import Spec
from .summary import Summary

__all__ = ["Checkpoint", "read_run_manifest", "write_tables"]


def read_run_manifest(out: Path) -> dict:
    """The manifest of a chunked run directory (complete or not), or a ConfigError saying why not."""
    manifest = manifest_json(
        out, "missing: no run was started in this directory, so there is nothing to resume or grow"
    )
    if not isinstance(manifest, dict) or manifest.get("kind") != "run" or "segments" not in manifest:
        raise ConfigError(
            [
                Problem(
                    MANIFEST_FILE,
                    "not written by `platform-sim run --out` (or by a version "
                    "that did not write its results chunk by chunk)",
                    file=str(out),
                )
            ]
        )
    return manifest


def write_manifest(out: Path, manifest: dict) -> None:
    atomic_write(Path(out) / MANIFEST_FILE, lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))


@dataclass
class Checkpoint:
    """The chunks of a run in ``out`` and the indices of those already done."""

    out: Path | None
    spec: Spec
    seed: int
    chunks: list[Chunk]
    records: bool
    done: set[int] = field(default_factory=set)
    manifest: dict | None = None  # the run's manifest, where each chunk's checksums are recorded
    warnings: list[str] = field(default_factory=list)  # saved chunks that cannot be trusted and run again

    @classmethod
    def scan(cls, out: Path, spec: Spec, manifest: dict) -> "Checkpoint":
        """The run ``manifest`` describes, with every chunk whose files are valid and match their
        checksums marked done; a chunk whose saved files do not is to run again, with a warning."""
        remove_leftovers(out)  # half-written temporary files of a killed run
        chunks = run_chunks(manifest)
        records = bool(manifest.get("records", False))
        checksums = manifest.setdefault("checksums", {})
        done, warnings = set(), []
        for c in chunks:
            problem = chunk_problem(out, c, checksums, records)
            if problem is not None:
                warnings.append(f"{problem}: chunk {c.index} is simulated again")
            elif read_chunk(out, c, spec.spec_hash, records, checksums) is not None:
                done.add(c.index)
        return cls(Path(out), spec, int(manifest["seed"]), chunks, records, done, manifest, warnings)

    @property
    def n_trials(self) -> int:
        return sum(c.size for c in self.chunks)

    @property
    def trials_done(self) -> int:
        return sum(c.size for c in self.chunks if c.index in self.done)

    def todo(self) -> list[Chunk]:
        return [c for c in self.chunks if c.index not in self.done]

    def execute(self, backend=None, progress: Callable[[int], None] | None = None) -> Summary:
        """Run the chunks not done on ``backend``, writing each as it finishes (when ``out`` is set),
        and return the summary of every chunk, merged in chunk order. Only the merged summary stays
        in memory: the summaries of chunks done before are read back one at a time."""
        reduce = summarizer(self.spec)
        earlier = set(self.done)
        outputs = stream(reduce, self.seed, self.todo(), backend, records=self.records and self.out is not None)
        total = Summary()
        try:
            for chunk in self.chunks:
                if chunk.index in earlier:
                    checksums = None if self.manifest is None else self.manifest.get("checksums")
                    summary = read_chunk(self.out, chunk, self.spec.spec_hash, self.records, checksums)
                    if summary is None:
                        raise ConfigError(
                            [
                                Problem(
                                    f"chunks/{chunk.index:06d}.json",
                                    "changed or removed while the run was going on",
                                    file=str(self.out),
                                )
                            ]
                        )
                else:
                    output = next(outputs)
                    if self.out is not None:
                        with _deferred_interrupt():  # a chunk is written whole, then Ctrl-C takes effect
                            sums = write_chunk(self.out, output, self.spec.spec_hash)
                            if self.manifest is not None:  # recorded at once: a resumed run checks the files
                                self.manifest.setdefault("checksums", {}).update(sums)
                                write_manifest(self.out, self.manifest)
                    self.done.add(chunk.index)
                    summary = output.summary
                    if progress:
                        progress(chunk.size)
                total.merge(summary)
        finally:
            outputs.close()
        return total


@contextmanager
def _deferred_interrupt():
    """Hold SIGINT (Ctrl-C) back while the block runs; it is delivered when the block ends. The
    block's own handler only notes the signal, whichever thread of the process the system gives it
    to (the numerical libraries' threads among them, which a signal mask of this thread would not
    cover); the previous handler is then restored and the signal raised again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)


def write_tables(out: Path, spec: Spec, summary: Summary, chunks: list[Chunk], records: bool) -> list[str]:
    """Write the operating characteristics of a run (``oc.csv``, the tidy table of
    :func:`platform_sim.oc.frame`) and, when the run kept its records, ``trials.parquet`` (one row per
    trial) and ``arms.parquet`` (one row per trial x arm), one chunk at a time; return the file names."""
    from .oc import frame

    out = Path(out)
    table = frame(summary)
    table.insert(0, "spec_hash", spec.spec_hash)
    atomic_write(out / "oc.csv", lambda p: table.to_csv(p, index=False))
    files = ["oc.csv"]
    if records:
        for name, frame_of in (
            ("trials.parquet", lambda r: r.trial_frame()),
            ("arms.parquet", lambda r: r.arm_frame()),
        ):
            atomic_write(out / name, lambda p, f=frame_of: _write_records(p, out, spec, chunks, f))
            files.append(name)
    return files


def _write_records(path: Path, out: Path, spec: Spec, chunks: list[Chunk], frame_of) -> None:
    """A per-trial Parquet table written chunk by chunk (one row group each), so memory stays flat."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for chunk in chunks:
            frame = frame_of(load_results(chunk_files(out, chunk.index)[1]))
            frame.insert(0, "spec_hash", spec.spec_hash)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
