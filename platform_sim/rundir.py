"""What a run directory holds, and how to read it back.

``platform-sim run --out DIR`` writes (see :mod:`platform_sim.checkpoint`) the
``manifest.json`` that vouches for the directory, byte-for-byte copies of the design and
scenario files the run loaded (``design.yaml``, ``scenario.yaml``; their comments carry
the sources of the numbers; and the population file the scenario names, under
``populations/``, where the scenario copy finds it), every finished chunk under
``chunks/`` and the tables (``oc.csv``, ``trials.parquet``, ``arms.parquet``). A chunk's
records file holds every array of its :class:`~platform_sim.results.TrialResults`
(:meth:`~platform_sim.results.TrialResults.to_arrays`: flat names, and the names of the
arms, strata and subgroups as JSON under ``__meta__``), read back without pickling.
:func:`save_run` writes results computed in memory as a complete directory of the same kind, with
the per-trial records in one ``results.npz``. A manifest names the files a run loaded by
:func:`source_path` (never an absolute path) and records :func:`versions`.

:func:`load_run` reads a directory back: it reloads the spec from the copies and
checks its spec hash against the manifest, so an edited copy (or a missing file) is
an error that names the file instead of a report about a different design. Every
file is written to a temporary name and moved into place with :func:`os.replace`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import ConfigError, Problem, resolve
from .results import TrialResults
from .spec import Spec

if TYPE_CHECKING:
    import pandas as pd

RESULTS_FILE = "results.npz"
DESIGN_FILE = "design.yaml"
SCENARIO_FILE = "scenario.yaml"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.html"  # the page built from the directory; it can always be built again
POPULATIONS_DIR = "populations"
TABLE_FILES = ("oc.csv", "trials.parquet", "arms.parquet")


def _temporary(path: Path) -> Path:
    """A new, empty file with a unique hidden name next to ``path`` (``.NAME.XXXXXXXX.tmp``)."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    return Path(name)


def atomic_write(path: Path, write: Callable[[Path], None], make_parents: bool = True) -> None:
    """Call ``write(tmp)`` on a temporary name next to ``path``, then move it into place: a reader
    (or a run killed at any moment) sees the old file or the new one, never half of one. The
    temporary file is removed if anything fails. ``make_parents``: create missing folders first
    (otherwise a missing folder is an OSError)."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    with _no_interrupt():
        tmp = _temporary(path)
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _no_interrupt():
    """Hold SIGINT (Ctrl-C) back while a file is written, in the main thread: the interrupt arrives
    when the write has finished or been undone, so no temporary file is left behind."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def sha256(path: Path) -> str:
    """The sha256 digest of a file (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy(source: Path, target: Path) -> None:
    atomic_write(target, lambda p: shutil.copyfile(source, p))


# --------------------------------------------------------------------------- results


def save_results(path: Path, results: TrialResults) -> None:
    """Write ``results`` to ``path`` (a compressed ``.npz``), atomically."""
    arrays = results.to_arrays()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: numpy would add .npz to a bare name
            np.savez_compressed(fh, **arrays)

    atomic_write(Path(path), write)


def load_results(path: Path) -> TrialResults:
    """Read :func:`save_results`' file back."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        return TrialResults.from_arrays(arrays)
    except KeyError as exc:
        raise ConfigError(
            [
                Problem(
                    str(exc.args[0]),
                    "missing from the results file; the run directory is incomplete or was written by another version",
                    file=str(path),
                )
            ]
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError([Problem("results", f"cannot read the results file ({exc})", file=str(path))]) from None


# --------------------------------------------------------------------------- spec files


def _population_ref(scenario_file: Path) -> str | None:
    """The population a scenario file names (None when it is inline or absent)."""
    from .config.load import read_yaml_file

    data, problems = read_yaml_file(Path(scenario_file), "scenario")
    ref = data.get("population") if isinstance(data, dict) and not problems else None
    return ref if isinstance(ref, str) else None


def copy_spec_files(
    spec: Spec, out: Path, design_name: str = DESIGN_FILE, scenario_name: str = SCENARIO_FILE
) -> list[str]:
    """Copy the design and scenario files of ``spec`` into ``out`` byte for byte (and the population
    file the scenario names, under ``populations/`` next to the scenario copy). Returns the paths
    written, relative to ``out``."""
    if spec.design_file is None or spec.scenario_file is None:
        raise ValueError("the spec was not loaded from files; nothing to copy (use Spec.load)")
    out = Path(out)
    _copy(Path(spec.design_file), out / design_name)
    return [design_name, *_copy_scenario(Path(spec.scenario_file), out, scenario_name)]


def _copy_scenario(scenario_file: Path, out: Path, scenario_name: str) -> list[str]:
    """Copy a scenario file, and the population file it names, into ``out`` (see :func:`copy_spec_files`)."""
    _copy(scenario_file, out / scenario_name)
    written = [scenario_name]
    ref = _population_ref(scenario_file)
    if ref is not None:  # (a path that leaves the scenario's folder was refused when the spec was loaded)
        source = resolve(ref, "population", near=scenario_file.parent)
        relative = Path(ref)
        if relative.suffix not in (".yaml", ".yml"):
            relative = relative.with_name(relative.name + ".yaml")
        target = (Path(scenario_name).parent / POPULATIONS_DIR / relative).as_posix()
        _copy(source, out / target)
        written.append(target)
    return written


def load_spec_copy(run_dir: Path, design_name: str, scenario_name: str, expected_hash: str | None) -> Spec:
    """Reload a spec from the copies in ``run_dir`` and check it against the hash the manifest
    recorded. A missing copy, a copy that no longer loads, or a different hash is a ConfigError."""
    run_dir = Path(run_dir)
    design, scenario = inside(run_dir, design_name), inside(run_dir, scenario_name)
    missing = [
        Problem(name, "missing from the run directory", file=str(run_dir))
        for name, path in ((design_name, design), (scenario_name, scenario))
        if not path.is_file()
    ]
    if missing:
        raise ConfigError(missing)
    spec = Spec.load(design, scenario)
    if expected_hash is not None and spec.spec_hash != expected_hash:
        raise ConfigError(
            [
                Problem(
                    "spec_hash",
                    f"the copies {design_name} and {scenario_name} give spec hash {spec.spec_hash}, but {MANIFEST_FILE} "
                    f"records {expected_hash}: a copy was edited after the run, so the results no longer describe it",
                    file=str(run_dir),
                )
            ]
        )
    return spec


# --------------------------------------------------------------------------- run directories


def _dump_model(model, target: Path, what: str) -> None:
    """Write a design or scenario held in memory as YAML that loads back into the same model (and so the
    same spec hash), with a first line saying where it came from."""
    import yaml

    text = (
        f"# {what} {model.name}, written from the model held in memory (it was not loaded from a file, or "
        "was changed after loading)\n"
        + yaml.safe_dump(model.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    )
    atomic_write(target, lambda p: p.write_text(text, encoding="utf-8"))


def _file_holds(source: str | None, model, kind: str) -> bool:
    """Whether ``source`` exists and still loads into ``model`` (so a byte-for-byte copy describes it)."""
    from .config import load_file

    if source is None or not Path(source).is_file():
        return False
    try:
        return load_file(source, kind) == model
    except ConfigError:
        return False


def write_spec_copies(spec: Spec, out: Path) -> list[str]:
    """``design.yaml`` and ``scenario.yaml`` in ``out``: byte-for-byte copies of the files the spec was
    loaded from (their comments carry the sources of the numbers; see :func:`copy_spec_files`), or,
    for a model made or changed in memory, its YAML. Returns the paths written, relative to ``out``."""
    out = Path(out)
    design_ok = _file_holds(spec.design_file, spec.design, "design")
    scenario_ok = _file_holds(spec.scenario_file, spec.scenario, "scenario")
    written = []
    if design_ok:
        _copy(Path(spec.design_file), out / DESIGN_FILE)
    else:
        _dump_model(spec.design, out / DESIGN_FILE, "design")
    written.append(DESIGN_FILE)
    if scenario_ok:
        written += _copy_scenario(Path(spec.scenario_file), out, SCENARIO_FILE)
    else:
        _dump_model(spec.scenario, out / SCENARIO_FILE, "scenario")
        written.append(SCENARIO_FILE)
    return written


def write_result_tables(out: Path, spec: Spec, results: TrialResults) -> list[str]:
    """``oc.csv`` (the tidy operating characteristics of :func:`platform_sim.oc.frame`), ``trials.parquet``
    (one row per trial) and ``arms.parquet`` (one row per trial x arm) of results held in memory, each
    with the spec hash in its first column; returns the file names."""
    from . import oc

    out = Path(out)
    table = oc.frame(oc.summarize(results, spec.truth))
    table.insert(0, "spec_hash", spec.spec_hash)
    atomic_write(out / "oc.csv", lambda p: table.to_csv(p, index=False))
    for name, frame in (("trials.parquet", results.trial_frame()), ("arms.parquet", results.arm_frame())):
        frame.insert(0, "spec_hash", spec.spec_hash)
        atomic_write(out / name, lambda p, f=frame: f.to_parquet(p, index=False))
    return list(TABLE_FILES)


def save_run(
    out: Path,
    results: TrialResults,
    spec: Spec,
    *,
    seed: int | None = None,
    chunk_size: int | None = None,
    workers: int | None = None,
    elapsed_seconds: float | None = None,
    command: str | None = None,
) -> dict:
    """Write results computed in memory as a complete run directory, which :func:`load_run`,
    ``platform-sim report`` and ``platform-sim trial --run`` read like the output of ``run --out``:
    ``results.npz``, the design and scenario (:func:`write_spec_copies`), the tables
    (:func:`write_result_tables`) and, last, ``manifest.json`` (:func:`run_manifest`; ``seed`` and
    the others are recorded as given, None when unknown). Returns the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_FILE).unlink(missing_ok=True)  # nothing half-rewritten is vouched for
    (out / REPORT_FILE).unlink(missing_ok=True)
    save_results(out / RESULTS_FILE, results)
    copies = write_spec_copies(spec, out)
    tables = write_result_tables(out, spec, results)
    manifest = run_manifest(
        spec,
        command=command,
        seed=seed,
        n_sims=results.n_trials,
        chunk_size=chunk_size,
        records=True,
        workers=workers,
        elapsed_seconds=elapsed_seconds,
        files=[RESULTS_FILE, *tables, *copies],
    )
    atomic_write(out / MANIFEST_FILE, lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
    return manifest


# --------------------------------------------------------------------------- provenance

#: The distributions platform-sim depends on (pyproject's ``dependencies``; a test keeps the two
#: lists alike) and the optional ones whose versions can change a result or a figure.
DEPENDENCIES = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "pydantic",
    "pyyaml",
    "click",
    "tqdm",
    "numba",
    "matplotlib",
    "threadpoolctl",
    "xarray",
    "jinja2",
)
OPTIONAL_DEPENDENCIES = ("llvmlite", "dask", "distributed", "pymc", "pytensor", "arviz")


def versions() -> dict[str, str]:
    """The versions of Python, platform-sim and every dependency (each optional one only when installed),
    read from the installed distributions' metadata without importing them."""
    import platform
    from importlib import metadata

    from ._version import __version__

    out = {"platform_sim": __version__, "python": platform.python_version()}
    for name in DEPENDENCIES + OPTIONAL_DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name in DEPENDENCIES:
                out[name] = "not installed"
    return out


_PACKAGE_DIR = Path(__file__).resolve().parent


def source_path(file: str | Path | None) -> str | None:
    """How a manifest or a report names a file a run loaded, never as an absolute path: a shipped file
    relative to the folder that ships it (``designs/pioneer_rar.yaml``), a file below the working
    directory relative to it, a relative path as it was given, and any other absolute path by its
    name alone (the run directory holds its copy)."""
    if file is None:
        return None
    path = Path(file)
    if not path.is_absolute():
        return path.as_posix()
    resolved = path.resolve()
    # the installed package's shipped folder before the folder holding the package: installed, that
    # folder is site-packages (which would name a shipped file platform_sim/shipped/designs/...); in a
    # checkout it is the repository, whose designs/ and scenarios/ are the shipped files
    for root in (Path.cwd(), _PACKAGE_DIR / "shipped", _PACKAGE_DIR.parent):
        try:
            return resolved.relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return path.name


def run_manifest(spec: Spec, *, command: str | None = None, **fields) -> dict:
    """The manifest of a run directory: when and how it was made (``command``: the command line, or
    None for a run made from Python), what it was made from (names, :func:`source_path` of the files,
    spec hash), :func:`versions` and ``fields``."""
    from datetime import UTC, datetime

    return {
        "kind": "run",
        "complete": True,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "spec_hash": spec.spec_hash,
        "design": {"name": spec.design.name, "file": source_path(spec.design_file)},
        "scenario": {"name": spec.scenario.name, "file": source_path(spec.scenario_file)},
        "versions": versions(),
        **fields,
    }


# --------------------------------------------------------------------------- chunks of a run

CHUNKS_DIR = "chunks"


def chunk_files(out: Path, index: int) -> tuple[Path, Path]:
    """The summary (``.json``) and per-trial records (``.npz``) files of chunk ``index``."""
    base = Path(out) / CHUNKS_DIR / f"{index:06d}"
    return base.with_suffix(".json"), base.with_suffix(".npz")


def write_chunk(out: Path, output, spec_hash: str) -> dict[str, str]:
    """Write a finished chunk (a :class:`~platform_sim.runner.ChunkOutput`): its records first, then
    its summary, each atomically. The summary file is what marks the chunk as done. Returns the
    sha256 of each file written, by its path relative to ``out`` (for the manifest)."""
    chunk = output.chunk
    summary_path, records_path = chunk_files(out, chunk.index)
    sums = {}
    if output.results is not None:
        save_results(records_path, output.results)
        sums[_relative(records_path)] = sha256(records_path)
    record = {
        "index": chunk.index,
        "size": chunk.size,
        "first": chunk.first,
        "spec_hash": spec_hash,
        "records": output.results is not None,
        "seconds": round(output.seconds, 4),
        "summary": output.summary.to_dict(),
    }
    atomic_write(summary_path, lambda p: p.write_text(json.dumps(record) + "\n"))
    sums[_relative(summary_path)] = sha256(summary_path)
    return sums


def _relative(path: Path) -> str:
    """``chunks/NNNNNN.json`` for a chunk file."""
    return f"{CHUNKS_DIR}/{Path(path).name}"


def chunk_problem(out: Path, chunk, checksums: dict | None, records: bool) -> str | None:
    """Why the saved files of ``chunk`` cannot be trusted, or None when each file the run needs
    exists and matches the sha256 the manifest recorded as it was written. Missing files are not a
    problem (the chunk simply has not run); a file without a recorded checksum is (it may be left
    by a run killed between writing it and recording it, or by an older version)."""
    summary_path, records_path = chunk_files(out, chunk.index)
    if not summary_path.is_file() or (records and not records_path.is_file()):
        return None
    for path in (records_path, summary_path) if records else (summary_path,):
        name = _relative(path)
        expected = (checksums or {}).get(name)
        if expected is None:
            return f"{name} has no checksum in {MANIFEST_FILE}"
        try:
            found = sha256(path)
        except OSError as exc:
            return f"{name} cannot be read ({exc.strerror or exc})"
        if found != expected:
            return (
                f"{name} does not match the checksum {MANIFEST_FILE} recorded when it was written (it was changed, "
                "damaged or copied from another run)"
            )
    return None


def read_chunk(out: Path, chunk, spec_hash: str, records: bool, checksums: dict | None = None):
    """The :class:`~platform_sim.summary.Summary` of a finished chunk, or None when the chunk must run
    (missing, unreadable, for another spec or position, without the records the run keeps, or, when
    ``checksums`` are given, not matching them: see :func:`chunk_problem`)."""
    from .summary import Summary

    summary_path, records_path = chunk_files(out, chunk.index)
    if checksums is not None and (not summary_path.is_file() or chunk_problem(out, chunk, checksums, records)):
        return None
    try:
        record = json.loads(summary_path.read_text())
        same = (record["index"], record["size"], record["first"], record["spec_hash"]) == (
            chunk.index,
            chunk.size,
            chunk.first,
            spec_hash,
        )
        if not same or (records and not (record["records"] and records_path.is_file())):
            return None
        return Summary.from_dict(record["summary"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_chunk_records(out: Path, chunks, checksums: dict | None = None) -> TrialResults:
    """The per-trial records of ``chunks`` of a run directory, joined in order; with ``checksums``
    (the manifest's), each file is checked against its sha256 first."""
    parts = []
    for chunk in chunks:
        path = chunk_files(out, chunk.index)[1]
        if not path.is_file():
            raise ConfigError(
                [
                    Problem(
                        f"{CHUNKS_DIR}/{path.name}",
                        "missing: the run kept no per-trial records "
                        "(it ran with --no-records) or the directory is incomplete",
                        file=str(out),
                    )
                ]
            )
        if checksums is not None:
            expected, name = checksums.get(_relative(path)), _relative(path)
            if expected is None or sha256(path) != expected:
                what = (
                    "has no checksum in manifest.json"
                    if expected is None
                    else (
                        "does not match the checksum recorded in manifest.json when it was written (changed, damaged or "
                        "copied from another run)"
                    )
                )
                raise ConfigError(
                    [
                        Problem(
                            name,
                            f"{what}; continue the run with `platform-sim run --out DIR "
                            "--resume` to simulate the chunk again",
                            file=str(out),
                        )
                    ]
                )
        parts.append(load_results(path))
    return TrialResults.concatenate(parts)


def run_chunks(manifest: dict) -> list:
    """The chunks of the run a manifest describes (its segments: the first run, then each --grow)."""
    from .runner import plan_chunks

    chunks: list = []
    for n in manifest["segments"]:
        chunks += plan_chunks(int(n), int(manifest["chunk_size"]), chunks[-1] if chunks else None)
    return chunks


def clear_run(out: Path) -> None:
    """Remove what a run writes into ``out`` (the manifest first, so nothing half-removed is vouched
    for): its tables, its results and its chunk files, by name; nothing else in ``out`` is touched."""
    out = Path(out)
    (out / MANIFEST_FILE).unlink(missing_ok=True)
    for name in (*TABLE_FILES, "oc.parquet", RESULTS_FILE, REPORT_FILE):
        (out / name).unlink(missing_ok=True)
    chunks = out / CHUNKS_DIR
    if chunks.is_dir():
        for path in chunks.iterdir():
            if _CHUNK_FILE.fullmatch(path.name) and path.is_file():
                path.unlink()
        try:
            chunks.rmdir()  # only when nothing else was left there
        except OSError:
            pass


# --------------------------------------------------------------------------- output directories

OUTPUT_KINDS = ("run", "compare", "trial", "calibrate", "population", "size")
_CHUNK_FILE = re.compile(r"\d{6}\.(json|npz)|\.\d{6}\.(json|npz)\..*\.tmp")
# The temporary files atomic_write leaves when the process is killed in the middle of a write
_LEFTOVER = re.compile(
    r"\.(\d{6}\.(json|npz)|manifest\.json|oc\.csv|oc\.parquet|trials\.parquet|arms\.parquet|"
    r"results\.npz|report\.html|design\.yaml|scenario\.yaml)\.[A-Za-z0-9_]+\.tmp"
)


def remove_leftovers(out: Path) -> list[str]:
    """Remove the temporary files a run killed in the middle of a write left in ``out`` and
    ``out/chunks`` (only names :func:`atomic_write` makes for a run's files); return their names."""
    removed = []
    for folder in (Path(out), Path(out) / CHUNKS_DIR):
        if folder.is_dir():
            for path in folder.iterdir():
                if _LEFTOVER.fullmatch(path.name) and path.is_file():
                    path.unlink()
                    removed.append(path.name)
    return removed


def inside(run_dir: Path, name) -> Path:
    """``run_dir / name`` for a path a manifest lists, which must stay inside ``run_dir`` (a relative
    path, no ``..`` above it, no symbolic link out of it); a ConfigError otherwise."""
    run_dir = Path(run_dir)
    text = str(name) if isinstance(name, (str, os.PathLike)) else None
    bad = text is None or not text or "\x00" in text or Path(text).is_absolute()
    if not bad:
        try:
            bad = not (run_dir / text).resolve().is_relative_to(run_dir.resolve())
        except (OSError, ValueError):
            bad = True
    if bad:
        raise ConfigError(
            [
                Problem(
                    MANIFEST_FILE,
                    "lists a path outside the run directory; only files inside it are read",
                    name if text is None else text[:200],
                    file=str(run_dir),
                )
            ]
        )
    return run_dir / text


def manifest_kind(manifest) -> str | None:
    """Which command wrote a manifest (see OUTPUT_KINDS), or None when platform-sim did not write it."""
    if not isinstance(manifest, dict):
        return None
    kind = manifest.get("kind")
    if kind in OUTPUT_KINDS:
        return kind
    if kind is not None:
        return None
    if "calibrated_threshold" in manifest:  # manifests written before they named their kind
        return "calibrate"
    if "index" in manifest and "spec_hash" in manifest:
        return "trial"
    if "designs" in manifest and "scenarios" in manifest:
        return "compare"
    if "spec_hash" in manifest:
        return "run"
    return None


def claim_out(out: Path, kind: str) -> dict | None:
    """Check that the output of command ``kind`` may be written into ``out`` and return the manifest
    already there (None for a new or empty directory). ``out`` must be new, empty, or hold the
    output of the same command (its ``manifest.json``): platform-sim never deletes or overwrites
    files it did not write, so a directory holding anything else is refused with a ConfigError.
    Within its own output directory a command replaces only the files it writes, by name."""
    out = Path(out)
    if not out.exists():
        return None
    if not out.is_dir():
        raise ConfigError([Problem("--out", "is a file, not a directory", str(out))])
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return None
    manifest = None
    if (out / MANIFEST_FILE).is_file():
        try:
            manifest = json.loads((out / MANIFEST_FILE).read_text())
        except (OSError, ValueError):
            manifest = None
    found = manifest_kind(manifest)
    if found is None:
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        raise ConfigError(
            [
                Problem(
                    "--out",
                    f"the directory holds files platform-sim did not write ({shown}); it "
                    "never deletes or overwrites them: choose a new or empty directory",
                    str(out),
                )
            ]
        )
    if found != kind:
        raise ConfigError(
            [
                Problem(
                    "--out",
                    f"the directory holds the output of `platform-sim {found}`, not of "
                    f"`platform-sim {kind}`: choose another directory",
                    str(out),
                )
            ]
        )
    return manifest


def manifest_json(run_dir: Path, missing: str):
    """The parsed ``manifest.json`` of ``run_dir``; ``missing`` says what its absence means."""
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ConfigError([Problem(MANIFEST_FILE, missing, file=str(run_dir))])
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError([Problem(MANIFEST_FILE, f"cannot be read ({exc})", file=str(run_dir))]) from None


def read_manifest(run_dir: Path) -> dict:
    """The manifest of a run or compare directory, checked to be complete."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError([Problem("run directory", "no such directory", str(run_dir))])
    manifest = manifest_json(
        run_dir, "missing: not the output directory of a finished run or compare (run it again with --out)"
    )
    if not isinstance(manifest, dict) or manifest.get("complete") is not True:
        raise ConfigError([Problem(MANIFEST_FILE, "does not mark a complete run", file=str(run_dir))])
    files = manifest.get("files", [])
    pairs = manifest.get("pairs") or []
    if not isinstance(files, list) or not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
        raise ConfigError(
            [Problem(MANIFEST_FILE, "is malformed: 'files' and 'pairs' must be lists", file=str(run_dir))]
        )
    for name in files + [p.get(k) for p in pairs for k in ("design_file", "scenario_file")]:
        inside(run_dir, name)  # every path the readers will open stays in the directory
    missing = [f for f in files if f != REPORT_FILE and not (run_dir / f).is_file()]
    if missing:
        raise ConfigError(
            [
                Problem(f, f"listed in {MANIFEST_FILE} but missing from the directory", file=str(run_dir))
                for f in missing
            ]
        )
    return manifest


def run_kind(manifest: dict) -> str:
    """'run' or 'compare': which command wrote the directory."""
    kind = manifest.get("kind")
    if kind in ("run", "compare"):
        return kind
    if "designs" in manifest and "scenarios" in manifest:
        return "compare"
    if "spec_hash" in manifest:
        return "run"
    raise ConfigError([Problem(MANIFEST_FILE, "written neither by `platform-sim run` nor by `platform-sim compare`")])


@dataclass
class RunDir:
    """A run directory read back: the spec (from the copies), the results, the manifest and the
    CSV tables by file name (``oc.csv``)."""

    path: Path
    spec: Spec
    results: TrialResults
    manifest: dict
    tables: dict[str, pd.DataFrame]


def load_run(run_dir: Path) -> RunDir:
    """Read a ``platform-sim run --out`` directory back (see the module docstring)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if run_kind(manifest) != "run":
        raise ConfigError(
            [Problem(MANIFEST_FILE, "this is a compare directory, not a run directory", file=str(run_dir))]
        )
    chunked = "segments" in manifest
    needed = [DESIGN_FILE, SCENARIO_FILE] + ([] if chunked else [RESULTS_FILE])
    missing = [f for f in needed if not (run_dir / f).is_file()]
    if missing:
        raise ConfigError(
            [
                Problem(
                    f,
                    "missing from the run directory; it was written without the files a report "
                    "needs (run again with --out)",
                    file=str(run_dir),
                )
                for f in missing
            ]
        )
    spec = load_spec_copy(run_dir, DESIGN_FILE, SCENARIO_FILE, manifest.get("spec_hash"))
    if chunked:
        where = f"{CHUNKS_DIR}/"
        results = load_chunk_records(run_dir, run_chunks(manifest), manifest.get("checksums"))
    else:
        where = RESULTS_FILE
        results = load_results(run_dir / RESULTS_FILE)
    arms = list(results.arms)
    if arms != list(spec.design.arm_names):
        raise ConfigError(
            [
                Problem(
                    where,
                    f"holds results for arms {arms}, which does not match the design's arms "
                    f"{list(spec.design.arm_names)}",
                    file=str(run_dir),
                )
            ]
        )
    n_sims = manifest.get("n_sims")
    if n_sims is not None and results.n_trials != n_sims:
        raise ConfigError(
            [
                Problem(
                    where,
                    f"holds {results.n_trials} simulated trials but {MANIFEST_FILE} records {n_sims}",
                    file=str(run_dir),
                )
            ]
        )
    import pandas as pd

    tables = {
        f: pd.read_csv(run_dir / f, keep_default_na=False, na_values=[""])
        for f in manifest.get("files", [])
        if f.endswith(".csv")
    }
    return RunDir(run_dir, spec, results, manifest, tables)


__all__ = [
    "CHUNKS_DIR",
    "DESIGN_FILE",
    "MANIFEST_FILE",
    "REPORT_FILE",
    "RESULTS_FILE",
    "SCENARIO_FILE",
    "RunDir",
    "atomic_write",
    "chunk_files",
    "chunk_problem",
    "claim_out",
    "clear_run",
    "copy_spec_files",
    "inside",
    "load_chunk_records",
    "load_results",
    "load_run",
    "load_spec_copy",
    "manifest_kind",
    "read_chunk",
    "read_manifest",
    "remove_leftovers",
    "run_chunks",
    "run_kind",
    "save_results",
    "run_manifest",
    "save_run",
    "sha256",
    "source_path",
    "versions",
    "write_result_tables",
    "write_spec_copies",
    "write_chunk",
]
