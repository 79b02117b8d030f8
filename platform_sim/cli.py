"""The ``platform-sim`` command: the only place that parses arguments and prints."""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import __version__

# Only light modules at import time, so that `platform-sim --help` starts at once: the commands import
# the configuration models, numpy, scipy, pandas and numba when they run.
from .backends import BACKENDS, DEFAULT_CHUNK_SIZE
from .config.defaults import DEFAULT_DESIGN, DEFAULT_SCENARIO
from .schemas import KINDS as SCHEMA_KINDS

if TYPE_CHECKING:
    from .config import Problem
    from .spec import Spec

EXIT_BAD_INPUT = 2


def _fail(problems: list[Problem] | list[str]) -> None:
    from .config import Problem

    for p in problems:
        click.echo(f"error: {p.format() if isinstance(p, Problem) else p}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _versions() -> dict[str, str]:
    from .rundir import versions

    return versions()


def _source(file) -> str | None:
    from .rundir import source_path

    return source_path(file)


def _prepare_out(out: Path, kind: str) -> dict | None:
    """Check that the output of command ``kind`` may go to ``out`` (new, empty, or that command's own
    output: platform-sim never deletes or overwrites files it did not write), create it and prove it
    is writable before any simulation starts. Returns the manifest that was there before (None for
    a new or empty directory)."""
    from .config import ConfigError
    from .rundir import claim_out

    try:
        previous = claim_out(out, kind)
    except ConfigError as exc:
        _fail(exc.problems)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".probe-"):
            pass
    except OSError as exc:
        _fail([f"--out {out}: cannot write there ({exc.strerror or exc})"])
    return previous


def _claim(out: Path, kind: str) -> None:
    """Mark ``out`` as the (unfinished) output of command ``kind`` before its first file is written,
    so that whatever happens next the directory is known as platform-sim's."""
    _write_json(
        out / "manifest.json",
        {
            "kind": kind,
            "complete": False,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": shlex.join(["platform-sim", *sys.argv[1:]]),
        },
    )


def _write_json(path: Path, data: dict) -> None:
    _atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n"))


def _manifest(spec: Spec, **fields) -> dict:
    """The manifest of an output directory: when and how it was made, what it was made from."""
    return {
        "complete": True,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["platform-sim", *sys.argv[1:]]),
        "spec_hash": spec.spec_hash,
        "design": {"name": spec.design.name, "file": _source(spec.design_file)},
        "scenario": {"name": spec.scenario.name, "file": _source(spec.scenario_file)},
        **fields,
    }


def _with_progress(total: int, quiet: bool, work, initial: int = 0):
    """``work(progress)`` with a progress bar's update as ``progress`` when stderr is a terminal and
    not ``quiet`` (``None`` otherwise): trials done, rate and time remaining. ``total`` may be an
    estimate; the bar ends at what was done. ``initial``: trials done before (a resumed run)."""
    if quiet or not sys.stderr.isatty():
        return work(None)
    from tqdm import tqdm

    with tqdm(total=total, initial=initial, unit="trial", file=sys.stderr, dynamic_ncols=True, smoothing=0.1) as bar:
        result = work(bar.update)
        bar.total = bar.n
        bar.refresh()
    return result


def _atomic_write(path: Path, write) -> None:
    """Write ``path`` atomically (a temporary file, then a rename), in a folder that must exist."""
    from .rundir import atomic_write

    atomic_write(path, write, make_parents=False)


#: What the commands that print results print: ``table`` for people, ``csv`` and ``json`` for programs
#: (one long table with value, mcse, lower and upper as separate numeric fields; NaN is empty in CSV
#: and null in JSON). With csv or json, the lines about the run go to stderr, so stdout holds the data.
FORMATS = ("table", "csv", "json")


def _format_markdown(f):
    return _format_option(f, ("markdown",))


def _format_option(f, extra: tuple[str, ...] = ()):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS + extra),
        default="table",
        show_default=True,
        help="table: for reading; csv or json: one long table of numbers (value, mcse, lower, "
        "upper) on stdout, everything else on stderr."
        + (" markdown: the side-by-side table as Markdown." if "markdown" in extra else ""),
    )(f)


def _say(fmt: str, text: str = "") -> None:
    """A line about the run: stdout for the table format, stderr when stdout carries csv or json."""
    click.echo(text, err=fmt in ("csv", "json"))


def _json_value(value):
    import math

    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame) -> list[dict]:
    """The rows of a table as JSON objects (NaN as null)."""
    return [{str(k): _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _emit(fmt: str, frame, **document) -> None:
    """``frame`` as CSV, or ``document`` (with the frame's rows under the key holding ``frame``) as JSON."""
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
        return
    out = {k: (_records(v) if hasattr(v, "to_dict") else _json_value(v)) for k, v in document.items()}
    click.echo(json.dumps(out, indent=1, allow_nan=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="platform-sim")
def main() -> None:
    """Simulate Bayesian adaptive platform trials and report their operating characteristics."""


def _backend_options(f):
    """--workers, --backend and --scheduler, shared by the commands that simulate."""
    f = click.option(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Run on the Dask cluster whose scheduler listens here, e.g. tcp://10.0.0.5:8786 (implies --backend dask).",
    )(f)
    f = click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default="local",
        show_default=True,
        help="local: this process, or --workers local processes; dask: a Dask cluster "
        "(a local one of --workers processes, or --scheduler's; needs platform-sim[dask]). "
        "Results are identical.",
    )(f)
    return click.option(
        "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes."
    )(f)


def _open_backend(backend: str, workers: int, scheduler: str | None):
    from .backends import BackendError, open_backend

    try:
        return open_backend(backend, workers, scheduler)
    except BackendError as exc:
        _fail([f"--scheduler {scheduler}: {exc}" if scheduler else f"--backend {backend}: {exc}"])


def _simulate(backend: str, workers: int, scheduler: str | None, total: int, quiet: bool, work):
    """``work(progress, backend)`` on the backend the options ask for, with a progress bar; returns its
    result and the seconds it took. Bad input and Ctrl-C end the command (nothing is written)."""
    from .config import ConfigError

    runner_backend = _open_backend(backend, workers, scheduler)
    start = time.perf_counter()
    try:
        result = _with_progress(total, quiet, lambda progress: work(progress, runner_backend))
    except ConfigError as exc:
        _fail(exc.problems)
    except (KeyboardInterrupt, SystemError) as exc:
        if not _interrupt(exc):
            raise
        click.echo("interrupted: nothing was written; run the same command again to start over", err=True)
        sys.exit(130)
    finally:
        runner_backend.close()
    return result, time.perf_counter() - start


def _interrupt(exc: BaseException | None) -> bool:
    """Whether ``exc`` is Ctrl-C. A compiled kernel calls back into Python to box the arrays it
    returns; Ctrl-C landing in that callback reaches the caller as a SystemError caused by the
    KeyboardInterrupt, so the chain of causes is searched."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _resume_hint(out: Path) -> str:
    return f"platform-sim run --out {shlex.quote(str(out))} --resume"


@main.command()
@click.option(
    "--scenario",
    default=None,
    help=f"Scenario file or shipped name.  [default: {DEFAULT_SCENARIO}; with --resume or --grow: the run's own copy]",
)
@click.option(
    "--design",
    default=None,
    help=f"Design file or shipped name.  [default: {DEFAULT_DESIGN}; with --resume or --grow: the run's own copy]",
)
@click.option("--n-sims", type=click.IntRange(min=1), default=None, help="Simulated trials.  [default: 2000]")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Master seed.  [default: 1]")
@_backend_options
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=None,
    help=f"Simulated trials per chunk: the unit of work, checkpoints and progress; the numbers do not "
    f"depend on it.  [default: {DEFAULT_CHUNK_SIZE}]",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write oc.csv, the design and scenario copies, manifest.json and every finished chunk "
    "(chunks/) here, and trials.parquet with --records.",
)
@click.option(
    "--records/--no-records",
    default=None,
    help="With --out, keep every trial's results (trials.parquet, chunks/*.npz), which the report and "
    "storyboards read; --no-records keeps only the operating characteristics.  [default: records]",
)
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out, skipping its finished chunks.")
@click.option(
    "--grow",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Add N simulated trials to the finished run in --out; their seeds continue its sequence.",
)
@click.option(
    "--report",
    "write_report",
    is_flag=True,
    help="Also write the HTML report OUT/report.html (needs --out and records).",
)
@_format_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(
    scenario,
    design,
    n_sims,
    seed,
    workers,
    backend,
    scheduler,
    chunk_size,
    out,
    records,
    resume,
    grow,
    write_report,
    fmt,
    quiet,
) -> None:
    """Simulate N trials of a design on a scenario and print the operating characteristics.

    Operating characteristics are accumulated as chunks finish, so memory stays flat for any
    number of trials. With --out, every finished chunk is saved at once: an interrupted run
    (Ctrl-C, a crash, a killed process) continues with --resume, and --grow N adds trials.
    """
    from concurrent.futures.process import BrokenProcessPool

    from .checkpoint import Checkpoint, read_run_manifest, write_manifest, write_tables
    from .config import ConfigError
    from .rundir import clear_run, copy_spec_files, load_spec_copy
    from .spec import Spec

    problems = []
    if write_report and out is None:
        problems.append("--report needs --out DIR: the report is written to DIR/report.html")
    if write_report and records is False:
        problems.append("--report needs the per-trial records: drop --no-records")
    if (resume or grow) and out is None:
        problems.append(f"{'--resume' if resume else '--grow'} needs --out DIR: the run to continue")
    if resume and grow:
        problems.append("--resume and --grow together: resume the run first, then grow it")
    if grow is not None and n_sims is not None:
        problems.append("--grow N adds N trials to the run; --n-sims does not apply")
    if problems:
        _fail(problems)

    continuing = resume or grow is not None
    manifest = None
    if continuing:
        try:
            manifest = read_run_manifest(out)
            spec = _continued_spec(out, manifest, design, scenario, load_spec_copy)
        except ConfigError as exc:
            _fail(exc.problems)
        given = {
            "--seed": (seed, manifest["seed"]),
            "--chunk-size": (chunk_size, manifest["chunk_size"]),
            "--n-sims": (n_sims, manifest["n_sims"]),
            "--records/--no-records": (records, manifest["records"]),
        }
        clash = [
            f"{opt} {mine}: the run in {out} was started with {theirs}; resuming or growing it with another "
            "value would mix different random streams (leave the option out to keep the run's)"
            for opt, (mine, theirs) in given.items()
            if mine is not None and mine != theirs
        ]
        if clash:
            _fail(clash)
        if grow is not None and not manifest.get("complete"):
            _fail([f"--grow: the run in {out} is not finished; complete it first with: {_resume_hint(out)}"])
        seed, chunk_size, records = manifest["seed"], manifest["chunk_size"], manifest["records"]
        if write_report and not records:
            _fail([f"--report: the run in {out} kept no per-trial records, which the report needs"])
    else:
        n_sims = 2000 if n_sims is None else n_sims
        seed = 1 if seed is None else seed
        chunk_size = DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
        records = out is not None and records is not False
        try:
            spec = Spec.load(design or DEFAULT_DESIGN, scenario or DEFAULT_SCENARIO)
        except ConfigError as exc:
            _fail(exc.problems)
    if out is not None:
        _prepare_out(out, "run")
        if not continuing:
            _refuse_interrupted(out)

    from .posterior import warm_up
    from .runner import plan_chunks

    if manifest is None:
        manifest = {
            "kind": "run",
            **_manifest(spec, seed=seed, n_sims=n_sims, chunk_size=chunk_size, segments=[n_sims], records=records),
        }
        manifest["complete"] = False
        if out is not None:
            clear_run(out)
            manifest["files"] = copy_spec_files(spec, out)
            write_manifest(out, manifest)
    elif grow is not None:
        manifest.update(complete=False, segments=[*manifest["segments"], grow], n_sims=manifest["n_sims"] + grow)
        from .rundir import TABLE_FILES

        for name in (*TABLE_FILES, "report.html"):
            (out / name).unlink(missing_ok=True)
        manifest["files"] = [f for f in manifest["files"] if f.endswith(".yaml")]
        write_manifest(out, manifest)
    if out is None:
        checkpoint = Checkpoint(None, spec, seed, plan_chunks(n_sims, chunk_size), False)
    else:
        checkpoint = Checkpoint.scan(out, spec, manifest)
    total = checkpoint.n_trials
    todo = total - checkpoint.trials_done

    _say(
        fmt,
        f"design {spec.design.name} ({_source(spec.design_file)}) on scenario {spec.scenario.name} "
        f"({_source(spec.scenario_file)})\n"
        f"{total} simulated trials, seed {seed}, chunk size {chunk_size}, spec hash {spec.spec_hash}",
    )
    for warning in checkpoint.warnings:
        click.echo(f"warning: {warning}", err=True)
    if continuing:
        _say(
            fmt,
            f"{checkpoint.trials_done} trials in {len(checkpoint.done)} chunks already done in {out}; "
            f"{todo} to simulate",
        )
    warm_up(if_uncached=True)  # kernels not in the cache compile here, out of the timing
    runner_backend = _open_backend(backend, workers, scheduler) if todo else None
    start = time.perf_counter()
    try:
        summary = _with_progress(
            total, quiet, lambda progress: checkpoint.execute(runner_backend, progress), initial=checkpoint.trials_done
        )
    except (KeyboardInterrupt, SystemError) as exc:
        if not _interrupt(exc):
            raise
        _stopped("interrupted", checkpoint, out, 130)
    except BrokenProcessPool as exc:
        _stopped(f"a worker process died ({exc})", checkpoint, out, 1)
    except OSError as exc:  # a full disk, a directory made read-only, a removed directory...
        _stopped(f"error: cannot write to {out} ({_os_error(exc)})", checkpoint, out, 1)
    finally:
        if runner_backend is not None:
            runner_backend.close()
    elapsed = time.perf_counter() - start
    if todo:
        _say(fmt, f"{todo / elapsed:,.0f} trials/s ({elapsed:.2f} s, {runner_backend.name})\n")
    from .oc import estimates
    from .text import format_run

    oc = estimates(summary)
    if fmt == "table":
        click.echo(format_run(spec, oc))  # plain rows: no pandas to load for the terminal
    else:
        table = oc.to_frame()
        _emit(
            fmt,
            table,
            design=spec.design.name,
            scenario=spec.scenario.name,
            n_sims=total,
            seed=seed,
            spec_hash=spec.spec_hash,
            oc=table,
        )

    if out is not None:
        try:
            files = write_tables(out, spec, summary, checkpoint.chunks, records)
        except OSError as exc:
            _stopped(f"error: cannot write the tables to {out} ({_os_error(exc)})", checkpoint, out, 1)
        copies = [f for f in manifest.get("files", []) if f.endswith(".yaml")]
        manifest.update(
            complete=True,
            command=shlex.join(["platform-sim", *sys.argv[1:]]),
            elapsed_seconds=round(elapsed + manifest.get("elapsed_seconds", 0.0), 3),
            workers=workers,
            backend=runner_backend.name if runner_backend else manifest.get("backend"),
            versions=_versions(),
            files=files + copies,
            chunks_dir="chunks",
        )
        write_manifest(out, manifest)
        _say(
            fmt,
            f"\nwrote {', '.join(f'{out}/{f}' for f in files)}, {len(checkpoint.chunks)} chunks in {out}/chunks, "
            f"the design and scenario copies and {out}/manifest.json",
        )
        if write_report:
            _write_report(out, manifest, fmt)


def _continued_spec(out: Path, manifest: dict, design, scenario, load_spec_copy) -> Spec:
    """The spec of the run in ``out``: its copies, or the files given, which must have its spec hash."""
    from .config import ConfigError, Problem
    from .spec import Spec

    if design is None and scenario is None:
        return load_spec_copy(out, "design.yaml", "scenario.yaml", manifest["spec_hash"])
    spec = Spec.load(design or out / "design.yaml", scenario or out / "scenario.yaml")
    if spec.spec_hash != manifest["spec_hash"]:
        raise ConfigError(
            [
                Problem(
                    "spec_hash",
                    f"{spec.design_file} with {spec.scenario_file} give spec hash {spec.spec_hash}, but the run in {out} was "
                    f"made with {manifest['spec_hash']} (design {manifest['design']['name']}, scenario "
                    f"{manifest['scenario']['name']}): the design or scenario differ, and mixing their results would "
                    "describe neither. Leave out --design and --scenario to continue with the run's own copies, or use "
                    "another --out",
                )
            ]
        )
    return spec


def _refuse_interrupted(out: Path) -> None:
    """A new run must not silently discard the finished chunks of an interrupted one."""
    from .config import ConfigError

    from .checkpoint import read_run_manifest

    try:
        manifest = read_run_manifest(out)
    except ConfigError:
        return
    if not manifest.get("complete") and any((out / "chunks").glob("*.json")):
        _fail(
            [
                f"--out {out}: holds an interrupted run with finished chunks; continue it with "
                f"{_resume_hint(out)}, or choose another directory (or delete this one) to start afresh"
            ]
        )


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def _stopped(what: str, checkpoint, out: Path | None, code: int) -> None:
    done, total = checkpoint.trials_done, checkpoint.n_trials
    if out is None:
        click.echo(
            f"\n{what}: {done} of {total} trials were simulated but nothing was kept (run with --out DIR "
            "to save chunks as they finish and continue later)",
            err=True,
        )
    else:
        click.echo(
            f"\n{what}: {len(checkpoint.done)} of {len(checkpoint.chunks)} chunks ({done} of {total} trials) "
            f"are saved in {out}; continue with:\n  {_resume_hint(out)}",
            err=True,
        )
    sys.exit(code)


@main.command()
@click.option(
    "--designs",
    "designs",
    multiple=True,
    required=True,
    help="Design files, shipped names or suite:NAME (repeat the option, or separate with commas).",
)
@click.option(
    "--scenarios",
    "scenarios",
    multiple=True,
    required=True,
    help="Scenario files, shipped names or suite:NAME (repeat the option, or separate with commas).",
)
@click.option(
    "--n-sims", type=click.IntRange(min=2), default=2000, show_default=True, help="Simulated trials per pair."
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=1, show_default=True, help="Master seed (shared by all pairs)."
)
@_backend_options
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=DEFAULT_CHUNK_SIZE,
    show_default=True,
    help="Simulated trials per chunk (the numbers do not depend on it).",
)
@click.option("--reference", default=None, help="Design the others are compared with (default: the first).")
@click.option(
    "--null-scenario",
    default=None,
    help="A global-null scenario on which every design's decision threshold is calibrated first (needs --target-fwer).",
)
@click.option(
    "--target-fwer",
    type=float,
    default=None,
    help="The FWER (P(any claim) on the null scenario) every design is calibrated to.",
)
@click.option(
    "--equal",
    type=click.Choice(["none", "max_n", "duration"]),
    default="none",
    show_default=True,
    help="Size every design like the reference first: the same maximum sample size, or the same planned "
    "accrual duration.",
)
@click.option(
    "--frontier/--no-frontier",
    default=True,
    show_default=True,
    help="With calibration, also run every design at thresholds around the calibrated one (a quarter of "
    "--n-sims each, at least 100 and at most --n-sims) for the power-versus-FWER frontier.",
)
@_format_markdown
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write comparison.csv, pairs.csv, yardstick.csv (and calibration.csv, frontier.csv, sizing.csv), "
    "the design and scenario copies and manifest.json here.",
)
@click.option(
    "--report", "write_report", is_flag=True, help="Also write the HTML decision report OUT/report.html (needs --out)."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def compare(
    designs,
    scenarios,
    n_sims,
    seed,
    workers,
    backend,
    scheduler,
    chunk_size,
    reference,
    null_scenario,
    target_fwer,
    equal,
    frontier,
    fmt,
    out,
    write_report,
    quiet,
) -> None:
    """Run every design on every scenario with the same simulated patients and compare them on one yardstick.

    Each design x scenario pair sees the same virtual patients with the same potential outcomes
    (common random numbers), so differences between designs are paired. Claims are judged per
    treatment x subgroup of patients defined by the scenario's true biomarkers: a claim for all
    patients counts in every subgroup. With --null-scenario and --target-fwer, every design's
    decision threshold is first calibrated to the same FWER; with --equal, every design is first
    sized like the reference design.
    """
    from .compare import compare as run_comparison, format_calibration_table, planned_trials, side_by_side, winners
    from .config import ConfigError, expand_designs, expand_scenarios

    try:
        designs = expand_designs([x for d in designs for x in d.split(",") if x])
        scenarios = expand_scenarios([x for s in scenarios for x in s.split(",") if x])
    except ConfigError as exc:
        _fail(exc.problems)
    if reference is not None and reference not in designs:
        _fail([f"--reference {reference}: not one of the designs {designs}"])
    if write_report and out is None:
        _fail(["--report needs --out DIR: the report is written to DIR/report.html"])
    if target_fwer is not None and not 0.0 < target_fwer < 1.0:
        _fail([f"--target-fwer {target_fwer:g}: must be strictly between 0 and 1"])
    if (null_scenario is None) != (target_fwer is None):
        _fail(
            [
                "--null-scenario and --target-fwer go together: calibrate every design on the null scenario to the "
                "target FWER"
            ]
        )
    if out is not None:
        _prepare_out(out, "compare")
    from .posterior import warm_up

    warm_up(if_uncached=True)
    total = planned_trials(len(designs), len(scenarios), n_sims, null_scenario is not None, frontier)
    result, elapsed = _simulate(
        backend,
        workers,
        scheduler,
        total,
        quiet,
        lambda progress, on: run_comparison(
            designs,
            scenarios,
            n_sims,
            seed,
            workers,
            chunk_size,
            reference,
            progress,
            backend=on,
            null_scenario=null_scenario,
            target_fwer=target_fwer,
            equal=equal,
            frontier=frontier,
        ),
    )
    if fmt != "markdown":
        _say(
            fmt,
            f"{len(designs)} designs x {len(scenarios)} scenarios x {n_sims} simulated trials, seed {seed}, "
            f"common random numbers; {elapsed:.1f} s\n",
        )
        if not result.sizing.empty:
            for r in result.sizing.itertuples():
                _say(
                    fmt,
                    f"sized {r.design} like {r.reference} ({r.equal}): max_n {r.max_n_before} -> "
                    f"{r.max_n_after}, planned accrual {r.months_before:.1f} -> {r.months_after:.1f} months",
                )
            _say(fmt)
        if not result.calibration.empty:
            _say(fmt, format_calibration_table(result) + "\n")
    from .compare import format_winners

    if fmt == "table":
        click.echo(
            "Claims are judged per treatment x subgroup of the scenario's true biomarkers; value ± Monte Carlo SE\n"
        )
        click.echo(side_by_side(result, "text"))
        click.echo("\n" + format_winners(winners(result)))
    elif fmt == "markdown":
        click.echo(side_by_side(result, "markdown"))
    else:
        _emit(
            fmt,
            result.table,
            designs=list(result.designs),
            scenarios=list(dict.fromkeys(result.table["scenario"])),
            reference=result.reference,
            n_sims=n_sims,
            seed=seed,
            null_scenario=result.null_scenario,
            target_fwer=result.target_fwer,
            equal=result.equal,
            table=result.table,
            pairs=result.pairs,
            winners=winners(result),
            calibration=result.calibration,
            frontier=result.frontier,
        )
    if out is not None:
        _write_comparison(
            out,
            result,
            designs,
            scenarios,
            null_scenario,
            seed,
            n_sims,
            chunk_size,
            workers,
            elapsed,
            fmt,
            write_report,
        )


def _write_comparison(
    out: Path, result, designs, scenarios, null_scenario, seed, n_sims, chunk_size, workers, elapsed, fmt, write_report
) -> None:
    from .compare import winners

    manifest_path = out / "manifest.json"
    _claim(out, "compare")
    (out / "report.html").unlink(missing_ok=True)
    tables = {
        "comparison.csv": result.table,
        "pairs.csv": result.pairs,
        "yardstick.csv": result.truth,
        "winners.csv": winners(result),
    }
    for name, frame in (
        ("calibration.csv", result.calibration),
        ("frontier.csv", result.frontier),
        ("sizing.csv", result.sizing),
    ):
        if not frame.empty:
            tables[name] = frame
    for name, frame in tables.items():
        _atomic_write(out / name, lambda p, f=frame: f.to_csv(p, index=False))
    references = scenarios + ([null_scenario] if null_scenario is not None and null_scenario not in scenarios else [])
    pairs, copies = _copy_compare_specs(out, designs, references, result.designs)
    manifest = {
        "kind": "compare",
        "complete": True,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["platform-sim", *sys.argv[1:]]),
        "designs": designs,
        "scenarios": scenarios,
        "reference": result.reference,
        "null_scenario": result.null_scenario,
        "target_fwer": result.target_fwer,
        "equal": result.equal,
        "seed": seed,
        "n_sims": n_sims,
        "chunk_size": chunk_size,
        "workers": workers,
        "elapsed_seconds": round(elapsed, 3),
        "versions": _versions(),
        "files": [*tables, *copies],
        "pairs": pairs,
    }
    _atomic_write(manifest_path, lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
    _say(fmt, f"\nwrote {', '.join(tables)}, the design and scenario copies and manifest.json in {out}")
    if write_report:
        _write_report(out, manifest, fmt)


def _copy_compare_specs(
    out: Path, designs: list[str], scenarios: list[str], as_run: dict | None = None
) -> tuple[list[dict], list[str]]:
    """Copy every design and scenario file of a comparison under out/designs/ and out/scenarios/;
    return one record per pair (the copies and the spec hash) and the files written. A design that
    ran calibrated or resized (``as_run``: the designs as they ran, by name) is also written as it
    ran, to designs/NAME.as_run.yaml, which the pair then names."""
    import yaml

    from .config import load_file, resolve
    from .rundir import copy_spec_files
    from .spec import Spec

    names: dict[tuple[str, str], str] = {}  # (kind, source file) -> copy

    def copy_name(kind: str, source: str, name: str) -> str:
        key = (kind, str(Path(source).resolve()))
        if key not in names:
            taken = set(names.values())
            base, i = f"{kind}s/{name}", 1
            candidate = f"{base}.yaml"
            while candidate in taken:
                i += 1
                candidate = f"{base}_{i}.yaml"
            names[key] = candidate
        return names[key]

    models: dict[tuple[str, str], tuple] = {}

    def model(kind: str, ref: str):  # each file parsed once; the pairs were checked by compare itself
        if (kind, ref) not in models:
            path = resolve(ref, kind)
            models[kind, ref] = (load_file(path, kind), str(path))
        return models[kind, ref]

    pairs, files = [], {}
    for s in scenarios:
        for d in designs:
            (design, design_file), (scenario, scenario_file) = model("design", d), model("scenario", s)
            spec = Spec(design, scenario, design_file, scenario_file)
            design_copy = copy_name("design", spec.design_file, spec.design.name)
            scenario_copy = copy_name("scenario", spec.scenario_file, spec.scenario.name)
            files.update(dict.fromkeys(copy_spec_files(spec, out, design_copy, scenario_copy)))
            record = {
                "design": spec.design.name,
                "scenario": spec.scenario.name,
                "design_file": design_copy,
                "scenario_file": scenario_copy,
                "spec_hash": spec.spec_hash,
            }
            ran = (as_run or {}).get(spec.design.name)
            if ran is not None and ran != design:
                ran_copy = design_copy.removesuffix(".yaml") + ".as_run.yaml"
                if ran_copy not in files:
                    text = (
                        f"# {spec.design.name} as it ran in this comparison (calibrated or resized); the "
                        f"original is {Path(design_copy).name}\n"
                        + yaml.safe_dump(ran.model_dump(mode="json"), sort_keys=False)
                    )
                    _atomic_write(out / ran_copy, lambda p, t=text: p.write_text(t, encoding="utf-8"))
                    files[ran_copy] = None
                record.update(
                    original_design_file=design_copy,
                    design_file=ran_copy,
                    spec_hash=Spec(ran, scenario, design_file, scenario_file).spec_hash,
                )
            pairs.append(record)
    return pairs, list(files)


def _write_report(out: Path, manifest: dict, fmt: str = "table") -> None:
    """Build out/report.html and list it in the manifest."""
    from .config import ConfigError

    from .report import REPORT_FILE, build_report

    try:
        path = build_report(out)
    except ConfigError as exc:
        _fail(exc.problems)
    manifest["files"] = [*manifest["files"], REPORT_FILE]
    _atomic_write(out / "manifest.json", lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
    _say(fmt, f"wrote {path}")


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--template",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A page template of your own (jinja2) that extends or replaces the shipped report.html.j2: "
    "a logo, a banner, a style sheet. See docs/report.md.",
)
def report(directory, template) -> None:
    """Write DIRECTORY/report.html for the output directory of `run --out` or `compare --out`.

    The page is self-contained (figures embedded, no external files) and opens offline: the
    design and scenario in words and tables, the truth, the operating characteristics with
    Monte Carlo errors, figures of allocation, sample size, stopping, power by arm and stratum
    and Monte Carlo convergence, and what is needed to reproduce the run.
    """
    from .config import ConfigError

    from .report import build_report

    start = time.perf_counter()
    try:
        path = build_report(directory, template)
    except ConfigError as exc:
        _fail(exc.problems)
    click.echo(f"wrote {path} ({time.perf_counter() - start:.1f} s)")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--scenario", default=None, help="Also check each design's names against this scenario (file or name).")
def validate(files, scenario) -> None:
    """Check design and scenario files and print every problem at once."""
    from .config import ConfigError, Design, load_file, load_files, resolve, target_scenarios

    loaded, problems = load_files(list(files))
    for path, model in loaded:
        if isinstance(model, Design) and model.targets is not None:
            try:
                target_scenarios(model, path)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
        click.echo(f"ok: {path} ({type(model).__name__.lower()} {model.name})")
    if scenario is not None:
        try:
            scen_path = resolve(scenario, "scenario")
            scen = load_file(scen_path, "scenario")
        except ConfigError as exc:
            problems.extend(exc.problems)
        else:
            from .spec import cross_problems

            designs = [(path, m) for path, m in loaded if isinstance(m, Design)]
            problems.extend(cross_problems(designs, [(str(scen_path), scen)]))
    if problems:
        _fail(problems)


@main.command()
@click.argument("kind", type=click.Choice(SCHEMA_KINDS))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the schema to this file instead of printing it.",
)
def schema(kind, out) -> None:
    """Print the JSON Schema of a KIND file (design, scenario or population).

    Editors that read JSON Schemas check and complete YAML files as they are typed; the schemas of
    this version are shipped in platform_sim/schemas/. Checks across fields and files are made
    only by `platform-sim validate`.
    """
    from .schemas import schema_text

    text = schema_text(kind)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        _atomic_write(out, lambda p: p.write_text(text, encoding="utf-8"))
    except OSError as exc:
        _fail([f"--out {out}: cannot write there ({exc.strerror or exc})"])
    click.echo(f"wrote {out}")


@main.command()
@click.option("--scenario", default=DEFAULT_SCENARIO, show_default=True, help="Scenario file or shipped name.")
@click.option(
    "--n",
    "n_patients",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Virtual patients to screen.",
)
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True, help="Seed.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write prevalence.csv, cooccurrence.csv, funnel.csv, outcomes.csv and patients.parquet here.",
)
def population(scenario, n_patients, seed, out) -> None:
    """Generate a cohort of virtual patients and compare it with the scenario's configuration.

    Prints prevalences and co-occurrence of the markers, the screening funnel and the
    outcomes of every treatment overall and per stratum, each next to its exact configured
    value, so a scenario can be checked against its sources before simulating a trial.
    """
    from .config import ConfigError, load_file, resolve

    from .cohort_summary import format_summary, summarize

    try:
        scen_path = resolve(scenario, "scenario")
        scen = load_file(scen_path, "scenario")
    except ConfigError as exc:
        _fail(exc.problems)
    if out is not None:
        _prepare_out(out, "population")
    from .outcomes import VirtualPatients

    start = time.perf_counter()
    summary = summarize(VirtualPatients(scen), n_patients, seed)
    elapsed = time.perf_counter() - start
    click.echo(format_summary(summary))
    click.echo(f"\n{n_patients:,} patients generated and summarized in {elapsed:.2f} s (seed {seed}, {scen_path})")
    if out is not None:
        _claim(out, "population")
        for name in ("prevalence", "cooccurrence", "funnel", "outcomes"):
            frame = getattr(summary, name)
            _atomic_write(out / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
        _atomic_write(out / "patients.parquet", lambda p: summary.patients.to_parquet(p, index=False))
        _write_json(
            out / "manifest.json",
            {
                "kind": "population",
                "complete": True,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": shlex.join(["platform-sim", *sys.argv[1:]]),
                "scenario": {"name": scen.name, "file": _source(scen_path)},
                "n": n_patients,
                "seed": seed,
                "versions": _versions(),
                "files": [f"{n}.csv" for n in ("prevalence", "cooccurrence", "funnel", "outcomes")]
                + ["patients.parquet"],
            },
        )
        click.echo(
            f"wrote prevalence.csv, cooccurrence.csv, funnel.csv, outcomes.csv, patients.parquet and "
            f"manifest.json to {out}"
        )


@main.command()
@click.option("--scenario", default=DEFAULT_SCENARIO, show_default=True, help="Scenario file or shipped name.")
@click.option("--design", default=DEFAULT_DESIGN, show_default=True, help="Design file or shipped name.")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True, help="Master seed of the run.")
@click.option(
    "--index",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Which simulated trial of the run (0-based).",
)
@click.option(
    "--n-sims",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Simulated trials of the run (the index must be below it).",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=DEFAULT_CHUNK_SIZE,
    show_default=True,
    help="Chunk size of the run (kept for the record; a trial does not depend on it).",
)
@click.option(
    "--run",
    "run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The output directory of the run (its design, scenario, seed and chunks, grown or not) instead "
    "of --design, --scenario, --seed, --n-sims and --chunk-size.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the tables, patients.parquet, the figures and the posterior (NetCDF) here.",
)
@click.option(
    "--bayes/--no-bayes",
    default=True,
    show_default=True,
    help="Fit the final PyMC model to the trial's patients (needs the bayes extra).",
)
@click.option(
    "--by",
    default=None,
    help="Biomarkers of the final model's groups, comma-separated (default: the design's strata, or for "
    "a design without strata the scenario's predictive markers that screening reports; a design "
    "that waits for no biomarker result runs no assay, so only characteristics known at screening).",
)
@click.option("--draws", type=click.IntRange(min=10), default=1000, show_default=True, help="NUTS draws per chain.")
@click.option(
    "--tune", type=click.IntRange(min=0), default=1000, show_default=True, help="NUTS tuning steps per chain."
)
@click.option("--chains", type=click.IntRange(min=1), default=2, show_default=True, help="Chains.")
@click.option("--cores", type=click.IntRange(min=1), default=1, show_default=True, help="Chains sampled in parallel.")
@click.option(
    "--target-accept",
    type=click.FloatRange(0.5, 1.0, min_open=False, max_open=True),
    default=0.9,
    show_default=True,
    help="NUTS target acceptance rate.",
)
@click.option("--sampler-seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the sampler.")
def trial(
    scenario,
    design,
    seed,
    index,
    n_sims,
    chunk_size,
    run_dir,
    out,
    bayes,
    by,
    draws,
    tune,
    chains,
    cores,
    target_accept,
    sampler_seed,
) -> None:
    """Replay one simulated trial from first patient to last decision, then analyse it in PyMC.

    Trial K of a run with seed S is exactly the trial of that run, whatever its chunk size and
    workers: the same patients, randomization and decisions. Prints a table per
    interim analysis (patients, events, posterior means with 95% credible intervals, decision
    statistics, allocation probabilities and decisions per arm x stratum).
    """
    from .config import ConfigError
    from .spec import Spec

    from .storyboard import format_story, history_figure, replay

    chunks = None
    try:
        if run_dir is None:
            spec = Spec.load(design, scenario)
        else:
            from .checkpoint import read_run_manifest
            from .rundir import load_spec_copy, run_chunks

            manifest = read_run_manifest(run_dir)
            spec = load_spec_copy(run_dir, "design.yaml", "scenario.yaml", manifest["spec_hash"])
            seed, n_sims, chunk_size = manifest["seed"], manifest["n_sims"], manifest["chunk_size"]
            chunks = run_chunks(manifest)
    except ConfigError as exc:
        _fail(exc.problems)
    if index >= n_sims:
        _fail([f"--index {index}: the run has trials 0..{n_sims - 1} (--n-sims {n_sims})"])
    groups_by = [m.strip() for m in by.split(",") if m.strip()] if by else None
    if groups_by:
        known = list(spec.patients.population.names)
        bad = [m for m in groups_by if m not in known]
        if bad:
            _fail([f"--by {by}: unknown characteristic(s) {bad}; the scenario has {known}"])
        from .storyboard import unreported

        never = unreported(spec, groups_by)
        if never and bayes:
            _fail(
                [
                    f"--by {by}: {never} are never reported in design {spec.design.name!r}, which randomizes "
                    "without waiting for a biomarker result (no assay measures them); group by characteristics "
                    "known at screening, or leave --by out"
                ]
            )
    if bayes:
        try:
            import arviz  # noqa: F401
            import pymc  # noqa: F401
        except ImportError:
            _fail(["--bayes needs PyMC and ArviZ: pip install 'platform-sim[bayes]' (or pass --no-bayes)"])
    if out is not None:
        _prepare_out(out, "trial")
    story = replay(spec, seed, index, n_sims, chunk_size, chunks)
    click.echo(format_story(story))
    files = []
    if out is not None:
        from .storyboard import record_frame

        _claim(out, "trial")
        _atomic_write(out / "analyses.csv", lambda p: story.analyses.to_csv(p, index=False))
        _atomic_write(out / "patients.parquet", lambda p: story.patients.to_parquet(p, index=False))
        _atomic_write(out / "record.csv", lambda p: record_frame(story).to_csv(p, index=False))
        files += ["analyses.csv", "patients.parquet", "record.csv"]
        for name in ("signatures", "allocations"):
            frame = getattr(story, name)
            if frame is not None:
                _atomic_write(out / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
                files.append(f"{name}.csv")
        fig = history_figure(story)
        _atomic_write(out / "history.png", lambda p: fig.savefig(p, format="png", dpi=120))
        files.append("history.png")
    if bayes:
        from .bayes.final_analysis import fit_final_analysis, forest_plot, save_netcdf
        from .storyboard import predictive_markers, unreported

        if groups_by is None and len(spec.truth.strata) == 1:
            # a design with one stratum: group by the markers that modify a treatment's effect in the scenario
            # and that screening reports (none an assay measures when the design waits for no biomarker result)
            markers = predictive_markers(spec)
            never = unreported(spec, markers)
            groups_by = [m for m in markers if m not in never][:2] or None
        data = story.analysis_data(groups_by)
        endpoint = "survival" if "event" in data else "binary"
        arms = [a for a in spec.design.arm_names if (data["arm"] == a).any()]
        groups = list(dict.fromkeys(sorted(data["group"])))
        click.echo(
            f"\nfinal Bayesian analysis ({'exponential survival' if endpoint == 'survival' else 'logistic'} model, "
            f"treatment x {'/'.join(groups_by) if groups_by else 'stratum'} with hierarchical interactions): "
            f"{len(data)} patients, {chains} chains x {draws} draws after {tune} tuning steps"
        )
        analysis = fit_final_analysis(
            data,
            arms=arms,
            groups=groups,
            control=spec.design.control,
            endpoint=endpoint,
            draws=draws,
            tune=tune,
            chains=chains,
            target_accept=target_accept,
            seed=sampler_seed,
            cores=cores,
        )
        click.echo(analysis.summary.to_string())
        click.echo("\ntreatment effects by group:")
        click.echo(analysis.effects.to_string(index=False))
        for w in analysis.warnings:
            click.echo(f"warning: {w}", err=True)
        if out is not None:
            _atomic_write(out / "posterior_summary.csv", lambda p: analysis.summary.to_csv(p))
            _atomic_write(out / "effects.csv", lambda p: analysis.effects.to_csv(p, index=False))
            forest = forest_plot(analysis)
            _atomic_write(out / "forest.png", lambda p: forest.savefig(p, format="png", dpi=120))
            save_netcdf(analysis, out / "posterior.nc")
            files += ["posterior_summary.csv", "effects.csv", "forest.png", "posterior.nc"]
    if out is not None:
        manifest = {
            "kind": "trial",
            **_manifest(
                spec, seed=seed, index=index, n_sims=n_sims, chunk_size=chunk_size, versions=_versions(), files=files
            ),
        }
        _atomic_write(out / "manifest.json", lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
        click.echo(f"\nwrote {', '.join(files)} and manifest.json to {out}")


def _one_line(path: Path) -> str:
    """The first sentence of a file's description (empty if it cannot be read)."""
    from .config.load import read_yaml_file

    data, problems = read_yaml_file(path)
    if problems:
        return "(unreadable)"
    text = " ".join(str(data.get("description", "")).split()) if isinstance(data, dict) else ""
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


@main.command(name="list")
@_format_option
def list_shipped(fmt) -> None:
    """List the shipped designs, scenarios and scenario suites (use a suite as suite:NAME) with a
    one-line description each."""
    from .config import resolve, shipped_names

    rows = [
        {"kind": kind, "name": name, "description": _one_line(resolve(name, kind))}
        for kind in ("design", "scenario", "suite")
        for name in shipped_names(kind)
    ]
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["kind", "name", "description"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
        return
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    for kind in ("design", "scenario", "suite"):
        click.echo(f"{kind}s:" if kind != "suite" else "scenario suites (--designs/--scenarios suite:NAME):")
        names = [r["name"] for r in rows if r["kind"] == kind]
        width = max((len(n) for n in names), default=0)
        for r in rows:
            if r["kind"] == kind:
                click.echo(f"  {r['name'].ljust(width)}  {r['description']}")


@main.command()
@click.option("--design", default=DEFAULT_DESIGN, show_default=True, help="Design file or shipped name.")
@click.option(
    "--null-scenarios",
    "null_scenarios",
    multiple=True,
    required=True,
    help="Scenarios whose type I error is held (repeat the option, or separate with commas).",
)
@click.option(
    "--target-fwer",
    "--target",
    "target",
    type=float,
    required=True,
    help="Largest type I error allowed in every null scenario, in (0, 1).",
)
@click.option(
    "--param",
    default=None,
    help="Threshold to calibrate: superiority (designs with looks; the default) or graduate "
    "(platform designs; their default).",
)
@click.option(
    "--alternative-scenarios",
    "alternative_scenarios",
    multiple=True,
    help="Scenarios to report power on (repeat the option, or separate with commas).",
)
@click.option(
    "--error",
    "criterion",
    type=click.Choice(["fwer", "per_arm", "any_claim"]),
    default="fwer",
    show_default=True,
    help="Family-wise error rate, the largest per-arm error, or P(any claim) (the family-wise error "
    "rate on a global null, whatever the design's own subgroups; what compare and size hold).",
)
@click.option(
    "--n-sims",
    type=click.IntRange(min=2),
    default=2000,
    show_default=True,
    help="Simulated trials per threshold and scenario.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Master seed (the same trials at every threshold).",
)
@_backend_options
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=DEFAULT_CHUNK_SIZE,
    show_default=True,
    help="Simulated trials per chunk (the numbers do not depend on it).",
)
@click.option(
    "--bounds",
    type=(float, float),
    default=None,
    help="Loosest and tightest thresholds searched  [default: 0.6 0.9999].",
)
@click.option(
    "--tolerance",
    type=float,
    default=None,
    help="Stop when the bracket is this narrow on the logit scale  [default: 0.01].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write calibration.csv, calibration_summary.csv and manifest.json here.",
)
@_format_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.argument("stray", nargs=-1, metavar="")
def calibrate(
    design,
    null_scenarios,
    target,
    param,
    alternative_scenarios,
    criterion,
    n_sims,
    seed,
    workers,
    backend,
    scheduler,
    chunk_size,
    bounds,
    tolerance,
    out,
    fmt,
    quiet,
    stray,
) -> None:
    """Find the decision threshold that holds the type I error at or below a target.

    Searches the superiority threshold (or a platform's graduation threshold) by bisection so
    that the family-wise error rate (or, with --error per_arm, the largest per-arm error) is at
    most the target in every null scenario. Every threshold is simulated on the same trials
    (common random numbers), so the error curve is a deterministic function of the threshold.
    Prints the curve, the calibrated threshold, its error with Monte Carlo standard errors and
    the power it gives on the alternative scenarios.
    """
    from .config import ConfigError
    from .spec import Spec

    from . import calibrate as cal_mod

    if stray:
        hint = "give several scenarios as --null-scenarios a,b (or repeat the option)"
        _fail([f"unexpected value(s) {' '.join(stray)}: {hint}"])
    nulls = [x for s in null_scenarios for x in s.split(",") if x]
    alternatives = [x for s in alternative_scenarios for x in s.split(",") if x]
    bounds = cal_mod.DEFAULT_BOUNDS if bounds is None else bounds
    tolerance = cal_mod.DEFAULT_TOLERANCE if tolerance is None else tolerance
    try:
        null_specs, alt_specs = cal_mod.load_specs(design, nulls, alternatives)
    except ConfigError as exc:
        _fail(exc.problems)
    if out is not None:
        _prepare_out(out, "calibrate")
    from .posterior import warm_up

    warm_up(if_uncached=True)
    kwargs = {
        "alternatives": alt_specs,
        "param": param,
        "criterion": criterion,
        "n_sims": n_sims,
        "seed": seed,
        "workers": workers,
        "chunk_size": chunk_size,
        "bounds": bounds,
        "tolerance": tolerance,
    }
    planned = cal_mod.planned_trials(len(nulls), len(alternatives), n_sims, bounds, tolerance)
    result, elapsed = _simulate(
        backend,
        workers,
        scheduler,
        planned,
        quiet,
        lambda progress, on: cal_mod.calibrate(null_specs, target, progress=progress, backend=on, **kwargs),
    )
    n_points = result.curve["step"].nunique()
    _say(
        fmt,
        f"design {result.design_name} ({_source(null_specs[0].design_file)}); {n_points} thresholds x {len(nulls)} null "
        f"scenario(s) x {n_sims} simulated trials, seed {seed}, common random numbers ({elapsed:.1f} s)\n",
    )
    if fmt == "table":
        click.echo(cal_mod.format_calibration(result))
    else:
        _emit(
            fmt,
            result.summary,
            design=result.design_name,
            param=result.path,
            criterion=result.criterion,
            target=result.target,
            calibrated_threshold=result.threshold,
            calibrated_values=list(result.values),
            design_values=list(result.design_values),
            monotone=result.monotone,
            notes=result.notes,
            n_sims=n_sims,
            seed=seed,
            summary=result.summary,
            curve=result.curve,
        )
    if out is not None:
        manifest_path = out / "manifest.json"
        _claim(out, "calibrate")
        _atomic_write(out / "calibration.csv", lambda p: result.curve.to_csv(p, index=False))
        _atomic_write(out / "calibration_summary.csv", lambda p: result.summary.to_csv(p, index=False))
        manifest = {
            "kind": "calibrate",
            "complete": True,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": shlex.join(["platform-sim", *sys.argv[1:]]),
            "design": {"name": result.design_name, "file": _source(null_specs[0].design_file)},
            "param": result.path,
            "criterion": result.criterion,
            "target": result.target,
            "calibrated_threshold": result.threshold,
            "calibrated_values": list(result.values),
            "calibrated_spec_hashes": {
                s.scenario.name: Spec(result.design, s.scenario).spec_hash for s in null_specs + alt_specs
            },
            "monotone": result.monotone,
            "notes": result.notes,
            "null_scenarios": [
                {"name": s.scenario.name, "file": _source(s.scenario_file), "spec_hash": s.spec_hash}
                for s in null_specs
            ],
            "alternative_scenarios": [
                {"name": s.scenario.name, "file": _source(s.scenario_file), "spec_hash": s.spec_hash} for s in alt_specs
            ],
            "seed": seed,
            "n_sims": n_sims,
            "chunk_size": chunk_size,
            "workers": workers,
            "bounds": list(result.bounds),
            "tolerance": result.tolerance,
            "elapsed_seconds": round(elapsed, 3),
            "versions": _versions(),
            "files": ["calibration.csv", "calibration_summary.csv"],
        }
        _atomic_write(manifest_path, lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
        _say(fmt, f"\nwrote {out}/calibration.csv, {out}/calibration_summary.csv and {out}/manifest.json")


@main.command()
@click.option("--design", required=True, help="Design file or shipped name.")
@click.option(
    "--scenario",
    default=None,
    help="Alternative scenario the power is read on (file or shipped name); with --use-targets, the "
    "design's targets.alternative_scenario.",
)
@click.option(
    "--power",
    "target_power",
    type=float,
    default=None,
    help="Target power, in (0, 1): P(at least one true claim) on the common yardstick.",
)
@click.option(
    "--null-scenario",
    default=None,
    help="Global-null scenario: calibrate the decision threshold there first (with --target-fwer).",
)
@click.option(
    "--target-fwer",
    type=float,
    default=None,
    help="P(any claim) on --null-scenario the calibrated threshold holds, in (0, 1).",
)
@click.option(
    "--use-targets",
    is_flag=True,
    help="Take --scenario, --power, --null-scenario and --target-fwer from the design's targets section "
    "(options given as well take precedence).",
)
@click.option(
    "--by",
    type=click.Choice(["max_n", "months"]),
    default=None,
    help="Size by the maximum number of randomized patients (designs with looks or strata; their "
    "default) or by the maximum duration in months (platforms; their default).",
)
@click.option(
    "--limit",
    type=float,
    default=None,
    help="Largest size searched, in patients or months  [default: 8 times the design's own].",
)
@click.option(
    "--tolerance",
    type=float,
    default=None,
    help="Stop when the bracket is narrower than this share of the size  [default: 0.02].",
)
@click.option(
    "--n-sims",
    type=click.IntRange(min=2),
    default=1000,
    show_default=True,
    help="Simulated trials per size (and per threshold when calibrating).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Master seed (the same trials at every size and threshold).",
)
@_backend_options
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=DEFAULT_CHUNK_SIZE,
    show_default=True,
    help="Simulated trials per chunk (the numbers do not depend on it).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write sizing.csv, the sized design (DESIGN.sized.yaml), calibration.csv when calibrating, and "
    "manifest.json here.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def size(
    design,
    scenario,
    target_power,
    null_scenario,
    target_fwer,
    use_targets,
    by,
    limit,
    tolerance,
    n_sims,
    seed,
    workers,
    backend,
    scheduler,
    chunk_size,
    out,
    quiet,
) -> None:
    """Find the smallest size at which a design reaches a target power.

    With --null-scenario and --target-fwer, the decision threshold is first calibrated so that
    P(any claim) on the null scenario is at most the target (as `platform-sim calibrate`, common
    random numbers). Then the design is resized by its family (every sample size scaled, or a
    platform's maximum duration changed), thresholds held, and the power on the alternative
    scenario is simulated at each size, the same trials at every size: the design's own size
    first, then doubling or halving to a bracket and bisection. Prints the power at every size
    with its Monte Carlo standard error, the size found and, with a null scenario, P(any claim)
    there at the design's own and the found size.
    """
    from . import calibrate as cal_mod
    from . import sizing
    from .config import ConfigError, Design, Problem, load_file, resolve, target_scenarios
    from .spec import Spec

    problems: list[Problem] = []
    if use_targets:
        try:
            path = resolve(design, "design")
            model = load_file(path, "design")
        except ConfigError as exc:
            _fail(exc.problems)
        assert isinstance(model, Design)
        if model.targets is None:
            _fail([Problem("--use-targets", f"design {model.name!r} has no targets section", design, file=str(path))])
        try:
            null_file, alternative_file = target_scenarios(model, str(path))
        except ConfigError as exc:
            _fail(exc.problems)
        t = model.targets
        assert t is not None
        scenario = scenario if scenario is not None else str(alternative_file)
        target_power = target_power if target_power is not None else t.power
        null_scenario = null_scenario if null_scenario is not None else str(null_file)
        target_fwer = target_fwer if target_fwer is not None else t.fwer
    if scenario is None:
        problems.append(Problem("--scenario", "give the alternative scenario the power is read on (or --use-targets)"))
    if target_power is None:
        problems.append(Problem("--power", "give the target power (or --use-targets)"))
    elif not 0.0 < target_power < 1.0:
        problems.append(Problem("--power", "the target power must be strictly between 0 and 1", target_power))
    if target_fwer is not None and not 0.0 < target_fwer < 1.0:
        problems.append(Problem("--target-fwer", "the target FWER must be strictly between 0 and 1", target_fwer))
    if tolerance is not None and not 0.0 < tolerance < 1.0:
        problems.append(Problem("--tolerance", "a share of the size, strictly between 0 and 1", tolerance))
    if limit is not None and not limit > 0:
        problems.append(Problem("--limit", "the largest size searched must be positive", limit))
    if (null_scenario is None) != (target_fwer is None):
        problems.append(
            Problem(
                "--target-fwer" if target_fwer is None else "--null-scenario",
                "calibrating needs both --null-scenario and --target-fwer",
            )
        )
    if problems:
        _fail(problems)
    try:
        spec = Spec.load(design, scenario)
    except ConfigError as exc:
        _fail(exc.problems)
    kwargs = {"by": by, "limit": limit, "workers": workers, "chunk_size": chunk_size}
    if tolerance is not None:
        kwargs["tolerance"] = tolerance
    try:  # refuse what cannot be sized before anything runs
        sizing.sizing_unit(spec, by)
    except ConfigError as exc:
        _fail(exc.problems)
    null_specs: list[Spec] = []
    if null_scenario is not None:
        try:
            null_specs, _ = cal_mod.load_specs(design, [null_scenario])
        except ConfigError as exc:
            _fail(exc.problems)
        if not null_specs[0].family.parameters:
            _fail(
                [
                    Problem(
                        "--design",
                        f"{spec.design.name!r} has no decision threshold that declares an arm "
                        "effective, so there is nothing to calibrate; size it without --null-scenario",
                        design,
                        file=spec.design_file,
                    )
                ]
            )
    if out is not None:
        _prepare_out(out, "size")
    from .posterior import warm_up

    warm_up(if_uncached=True)
    planned = sizing.planned_sizing_trials(
        n_sims, kwargs.get("tolerance", sizing.DEFAULT_SIZE_TOLERANCE), null_scenario is not None
    )
    if null_scenario is not None:
        planned += cal_mod.planned_trials(1, 0, n_sims)

    def work(progress, on):
        cal = None
        sized_design = spec.design
        if null_specs:
            cal = cal_mod.calibrate(
                null_specs,
                target_fwer,
                criterion="any_claim",
                n_sims=n_sims,
                seed=seed,
                workers=workers,
                chunk_size=chunk_size,
                progress=progress,
                backend=on,
            )
            sized_design = cal.design
        alternative = spec.with_design(sized_design) if cal is not None else spec
        null = None
        if null_specs:
            null = null_specs[0].with_design(sized_design) if cal is not None else null_specs[0]
        result = sizing.size_for_power(
            alternative, None, target_power, n_sims, seed, null_scenario=null, progress=progress, backend=on, **kwargs
        )
        return cal, result

    (cal, result), elapsed = _simulate(backend, workers, scheduler, planned, quiet, work)
    click.echo(
        f"design {spec.design.name} ({spec.design_file}); alternative {spec.scenario.name}; "
        f"{n_sims} simulated trials per point, seed {seed}, common random numbers ({elapsed:.1f} s)\n"
    )
    if cal is not None:
        click.echo(cal_mod.format_calibration(cal))
        click.echo("")
    click.echo(sizing.format_sizing(result))
    if out is not None:
        import yaml

        manifest_path = out / "manifest.json"
        files = ["sizing.csv"]
        _atomic_write(out / "sizing.csv", lambda p: result.steps.to_csv(p, index=False))
        if not result.fwer.empty:
            _atomic_write(out / "sizing_fwer.csv", lambda p: result.fwer.to_csv(p, index=False))
            files.append("sizing_fwer.csv")
        if cal is not None:
            _atomic_write(out / "calibration.csv", lambda p: cal.curve.to_csv(p, index=False))
            files.append("calibration.csv")
        if result.design is not None:
            name = f"{spec.design.name}.sized.yaml"
            text = (
                f"# {spec.design.name} sized by platform-sim size (seed {seed}, {n_sims} simulated trials per "
                f"size): power {result.target_power:g} on {result.scenario}\n"
                + yaml.safe_dump(result.design.model_dump(mode="json"), sort_keys=False)
            )
            _atomic_write(out / name, lambda p: p.write_text(text))
            files.append(name)
        found = result.found
        manifest = {
            "kind": "size",
            "complete": True,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": shlex.join(["platform-sim", *sys.argv[1:]]),
            "design": {"name": spec.design.name, "file": _source(spec.design_file)},
            "alternative_scenario": {"name": spec.scenario.name, "file": _source(spec.scenario_file)},
            "null_scenario": None
            if not null_specs
            else {"name": null_specs[0].scenario.name, "file": _source(null_specs[0].scenario_file)},
            "target_power": result.target_power,
            "target_fwer": target_fwer,
            "by": result.by,
            "calibrated_values": None if cal is None else list(cal.values),
            "design_size": {"max_n": result.design_size.max_n, "months": result.design_size.months},
            "found": None if found is None else {"max_n": found.max_n, "months": found.months},
            "reached": result.reached,
            "monotone": result.monotone,
            "notes": result.notes,
            "limit": result.limit,
            "seed": seed,
            "n_sims": n_sims,
            "chunk_size": chunk_size,
            "workers": workers,
            "tolerance": result.tolerance,
            "elapsed_seconds": round(elapsed, 3),
            "versions": _versions(),
            "files": files,
        }
        _atomic_write(manifest_path, lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
        click.echo(f"\nwrote {', '.join(f'{out}/{f}' for f in files)} and {out}/manifest.json")


#: The idle time of OpenBLAS's threads, as its ``OPENBLAS_THREAD_TIMEOUT`` (2**4 cycles; 4 is its
#: least): numpy and scipy each load an OpenBLAS whose threads otherwise spin for about 2**28 cycles
#: (0.1 s) after start-up and after every call, CPU time that a short run pays once per library.
#: The number of threads is unchanged, and with it every result.
OPENBLAS_IDLE = "4"
#: The first generation's threshold of the garbage collector in the command's process (Python's
#: default is 700): starting up creates some hundred thousand long-lived objects (the configuration
#: models, numba's types), which the default threshold scans a few hundred times over.
GC_THRESHOLD = 20_000


def command_line() -> None:
    """The ``platform-sim`` program: :func:`main` in a process of its own.

    Tuned for a process that ends with the command: OpenBLAS's threads sleep when idle (unless
    ``OPENBLAS_THREAD_TIMEOUT`` is set), the garbage collector runs less often, and at the end
    every object is frozen (:func:`gc.freeze`), so that the interpreter's shutdown does not scan
    them all again; files are written and closed before then, and exit handlers still run.
    """
    import gc
    import os

    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_IDLE)  # read when numpy loads OpenBLAS
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        main()
    finally:
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    command_line()
