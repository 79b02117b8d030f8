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

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .config import ConfigError, Problem, resolve
from .results import TrialResults
from .spec import Spec

RESULTS_FILE = "results.npz"
DESIGN_FILE = "design.yaml"
SCENARIO_FILE = "scenario.yaml"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.html"  # the page built from the directory; it can always be built again
POPULATIONS_DIR = "populations"
TABLE_FILES = ("oc.csv", "trials.parquet", "arms.parquet")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary name next to ``path``, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
        raise ConfigError([Problem(str(exc.args[0]), "missing from the results file; the run directory is "
                                   "incomplete or was written by another version", file=str(path))]) from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError([Problem("results", f"cannot read the results file ({exc})", file=str(path))]) from None


# --------------------------------------------------------------------------- spec files


def _population_ref(scenario_file: Path) -> str | None:
    """The population a scenario file names (None when it is inline or absent)."""
    import yaml

    try:
        data = yaml.safe_load(scenario_file.read_text())
    except (OSError, yaml.YAMLError):
        return None
    ref = data.get("population") if isinstance(data, dict) else None
    return ref if isinstance(ref, str) else None


def copy_spec_files(spec: Spec, out: Path, design_name: str = DESIGN_FILE,
                    scenario_name: str = SCENARIO_FILE) -> list[str]:
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
    if ref is not None:
        relative = Path(ref)
        if not relative.is_absolute() and ".." not in relative.parts:
            source = resolve(ref, "population", near=scenario_file.parent)
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
    design, scenario = run_dir / design_name, run_dir / scenario_name
    missing = [Problem(name, "missing from the run directory", file=str(run_dir))
               for name, path in ((design_name, design), (scenario_name, scenario)) if not path.is_file()]
    if missing:
        raise ConfigError(missing)
    spec = Spec.load(design, scenario)
    if expected_hash is not None and spec.spec_hash != expected_hash:
        raise ConfigError([Problem(
            "spec_hash",
            f"the copies {design_name} and {scenario_name} give spec hash {spec.spec_hash}, but {MANIFEST_FILE} "
            f"records {expected_hash}: a copy was edited after the run, so the results no longer describe it",
            file=str(run_dir))])
    return spec


# --------------------------------------------------------------------------- run directories


def _dump_model(model, target: Path, what: str) -> None:
    """Write a design or scenario held in memory as YAML that loads back into the same model (and so the
    same spec hash), with a first line saying where it came from."""
    import yaml

    text = (f"# {what} {model.name}, written from the model held in memory (it was not loaded from a file, or "
            "was changed after loading)\n" + yaml.safe_dump(model.model_dump(mode="json"), sort_keys=False,
                                                              allow_unicode=True))
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


def save_run(out: Path, results: TrialResults, spec: Spec, *, seed: int | None = None,
             chunk_size: int | None = None, workers: int | None = None, elapsed_seconds: float | None = None,
             command: str | None = None) -> dict:
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
    manifest = run_manifest(spec, command=command, seed=seed, n_sims=results.n_trials, chunk_size=chunk_size,
                            records=True, workers=workers, elapsed_seconds=elapsed_seconds,
                            files=[RESULTS_FILE, *tables, *copies])
    atomic_write(out / MANIFEST_FILE, lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
    return manifest


# --------------------------------------------------------------------------- provenance

#: The distributions platform-sim depends on (pyproject's ``dependencies``; a test keeps the two
#: lists alike) and the optional ones whose versions can change a result or a figure.
DEPENDENCIES = ("numpy", "scipy", "pandas", "pyarrow", "pydantic", "pyyaml", "click", "tqdm", "numba", "matplotlib",
                "xarray", "jinja2")
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
    for root in (Path.cwd(), _PACKAGE_DIR.parent, _PACKAGE_DIR / "shipped"):
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


def write_chunk(out: Path, output, spec_hash: str) -> None:
    """Write a finished chunk (a :class:`~platform_sim.runner.ChunkOutput`): its records first, then
    its summary, each atomically. The summary file is what marks the chunk as done."""
    chunk = output.chunk
    summary_path, records_path = chunk_files(out, chunk.index)
    if output.results is not None:
        save_results(records_path, output.results)
    record = {"index": chunk.index, "size": chunk.size, "first": chunk.first, "spec_hash": spec_hash,
              "records": output.results is not None, "seconds": round(output.seconds, 4),
              "summary": output.summary.to_dict()}
    atomic_write(summary_path, lambda p: p.write_text(json.dumps(record) + "\n"))


def read_chunk(out: Path, chunk, spec_hash: str, records: bool):
    """The :class:`~platform_sim.summary.Summary` of a finished chunk, or None when the chunk must run
    (missing, unreadable, for another spec or position, or without the records the run keeps)."""
    from .summary import Summary

    summary_path, records_path = chunk_files(out, chunk.index)
    try:
        record = json.loads(summary_path.read_text())
        same = (record["index"], record["size"], record["first"], record["spec_hash"]) == (
            chunk.index, chunk.size, chunk.first, spec_hash)
        if not same or (records and not (record["records"] and records_path.is_file())):
            return None
        return Summary.from_dict(record["summary"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_chunk_records(out: Path, chunks) -> TrialResults:
    """The per-trial records of ``chunks`` of a run directory, joined in order."""
    parts = []
    for chunk in chunks:
        path = chunk_files(out, chunk.index)[1]
        if not path.is_file():
            raise ConfigError([Problem(f"{CHUNKS_DIR}/{path.name}", "missing: the run kept no per-trial records "
                                       "(it ran with --no-records) or the directory is incomplete",
                                       file=str(out))])
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
    """Remove what a run writes into ``out`` (the manifest first, so nothing half-removed is vouched for)."""
    out = Path(out)
    (out / MANIFEST_FILE).unlink(missing_ok=True)
    for name in (*TABLE_FILES, "oc.parquet", RESULTS_FILE, REPORT_FILE):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / CHUNKS_DIR, ignore_errors=True)


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
    manifest = manifest_json(run_dir, "missing: not the output directory of a finished run or compare "
                                      "(run it again with --out)")
    if not isinstance(manifest, dict) or manifest.get("complete") is not True:
        raise ConfigError([Problem(MANIFEST_FILE, "does not mark a complete run", file=str(run_dir))])
    missing = [f for f in manifest.get("files", []) if f != REPORT_FILE and not (run_dir / f).is_file()]
    if missing:
        raise ConfigError([Problem(f, f"listed in {MANIFEST_FILE} but missing from the directory", file=str(run_dir))
                           for f in missing])
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
        raise ConfigError([Problem(MANIFEST_FILE, "this is a compare directory, not a run directory",
                                   file=str(run_dir))])
    chunked = "segments" in manifest
    needed = [DESIGN_FILE, SCENARIO_FILE] + ([] if chunked else [RESULTS_FILE])
    missing = [f for f in needed if not (run_dir / f).is_file()]
    if missing:
        raise ConfigError([Problem(f, "missing from the run directory; it was written without the files a report "
                                   "needs (run again with --out)", file=str(run_dir)) for f in missing])
    spec = load_spec_copy(run_dir, DESIGN_FILE, SCENARIO_FILE, manifest.get("spec_hash"))
    if chunked:
        where = f"{CHUNKS_DIR}/"
        results = load_chunk_records(run_dir, run_chunks(manifest))
    else:
        where = RESULTS_FILE
        results = load_results(run_dir / RESULTS_FILE)
    arms = list(results.arms)
    if arms != list(spec.design.arm_names):
        raise ConfigError([Problem(where, f"holds results for arms {arms}, which does not match the design's arms "
                                   f"{list(spec.design.arm_names)}", file=str(run_dir))])
    n_sims = manifest.get("n_sims")
    if n_sims is not None and results.n_trials != n_sims:
        raise ConfigError([Problem(where, f"holds {results.n_trials} simulated trials but {MANIFEST_FILE} "
                                   f"records {n_sims}", file=str(run_dir))])
    tables = {f: pd.read_csv(run_dir / f, keep_default_na=False, na_values=[""])
              for f in manifest.get("files", []) if f.endswith(".csv")}
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
    "clear_run",
    "copy_spec_files",
    "load_chunk_records",
    "load_results",
    "load_run",
    "load_spec_copy",
    "read_chunk",
    "read_manifest",
    "run_chunks",
    "run_kind",
    "save_results",
    "run_manifest",
    "save_run",
    "source_path",
    "versions",
    "write_result_tables",
    "write_spec_copies",
    "write_chunk",
]
