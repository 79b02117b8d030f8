"""The compiled-kernel cache an installed package ships, so that its first run does not compile.

Building the wheel (``pip install .``; see ``hatch_build.py``) runs one small trial of every shipped
design with ``PLATFORM_SIM_KERNEL_CACHE_BUILD`` naming a folder: numba writes every kernel it
compiles there, and the wheel ships that folder as ``platform_sim/_kernels/`` with a manifest of the
versions it was compiled with (Python, numba, llvmlite, numpy).

numba's own cache cannot be shipped as it is: its index is keyed on the source file's modification
time and size, and an installed file's modification time is the time of installation (pip does not
keep the wheel's). :class:`ShippedKernelLocator` (a numba cache locator, registered first when this
module is imported) keys the index on a sha256 of the source file's content instead, and points at
the shipped folder:

* every module with ``@njit(cache=True)`` kernels imports this module before its first decorator
  (numba picks a kernel's locator when the decorator runs); ``platform-sim --help`` imports none of
  them, so it still does not import numba;
* the locator applies only to the package's own files; the shipped folder is used only when its
  manifest names the versions in use; otherwise (a checkout, an editable install, a newer numpy)
  kernels are cached in ``__pycache__`` where numba's default locator would put them;
* the stamp also holds a sha256 of the whole package (:func:`package_hash`): numba's own stamp, the
  kernel's file alone, misses a change in another module whose functions or constants the kernel
  compiled in, and would load a kernel that still runs the old code;
* new specialisations (another CPU, other argument types) are written to the shipped folder when it
  is writable, and otherwise to a copy of it in numba's user-wide cache folder;
* numba still checks its own version and the CPU (name and features) of every entry, and the byte
  code of every function: an entry compiled elsewhere simply misses, and the kernel compiles as it
  would without a shipped cache;
* with numba internals other than those this module knows (``numba.core.caching``), nothing is
  registered and numba behaves as it does by default.

Loading a cached kernel is also made cheaper (:func:`_load_without_compiler`, for the package's own
kernels, shipped or cached in a checkout). numba readies its compiler before every load from the
cache: it imports the implementations of every Python and numpy feature it can compile (some forty
modules, about 0.1 s of a short run) and installs them in its typing and target contexts. Running
machine code loaded from the cache needs none of them, only numba's runtime (initialised here as
numba does) and the symbols its code calls: numba's C helpers, math functions and exception types
are installed when its target context is made, the hashing secrets when ``numba.cpython.hashing``
is imported (imported here too, in case a kernel hashes). The code loaded is the same either way,
and a kernel that is not in the cache compiles as before (numba's compiler readies its contexts
itself).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

#: The package folder; the locator serves the source files under it.
PACKAGE = Path(__file__).resolve().parent
#: Where an installed package keeps its shipped kernels.
SHIPPED = PACKAGE / "_kernels"
#: Set to a folder while the wheel is built: kernels compiled then are written there.
BUILD_ENV = "PLATFORM_SIM_KERNEL_CACHE_BUILD"
MANIFEST = "manifest.json"

#: The locator class, once registered with numba (None: numba's default locators apply).
registered: type | None = None


def versions() -> dict[str, str]:
    """The versions a shipped kernel depends on: a cache compiled under others is not used."""
    import llvmlite
    import numba
    import numpy

    return {
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}{getattr(sys, 'abiflags', '')}",
        "implementation": sys.implementation.name,
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "numpy": numpy.__version__,
    }


def write_manifest(folder: Path) -> None:
    """Record the versions the kernels in ``folder`` were compiled with."""
    (folder / MANIFEST).write_text(json.dumps(versions(), indent=2, sort_keys=True) + "\n")


@cache
def cache_root() -> Path | None:
    """The folder the package's kernels are cached in: the build folder while the wheel is built, the
    shipped folder when its manifest matches the versions in use, else None (numba's default)."""
    build = os.environ.get(BUILD_ENV)
    if build:
        return Path(build)
    try:
        recorded = json.loads((SHIPPED / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return SHIPPED if recorded == versions() else None


@cache
def source_hash(py_file: str) -> str:
    """sha256 of a source file's bytes: the stamp of its cache index."""
    return hashlib.sha256(Path(py_file).read_bytes()).hexdigest()


@cache
def package_hash() -> str:
    """sha256 of every source file of the package (its path and bytes). A compiled kernel holds
    copies of the functions it calls and of the constants it reads from other modules of the
    package, which a stamp of its own file does not see: with this hash in every kernel's stamp, a
    change anywhere in the package makes every cached kernel miss once and compile again."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (created if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def _user_folder(root: Path) -> Path:
    """A user-wide copy of a read-only shipped folder (numba's cache folder, or NUMBA_CACHE_DIR), one
    per installation (the manifest's path and modification time: a reinstallation gets a new copy)."""
    from numba.core import config
    from numba.misc.appdirs import AppDirs

    base = config.CACHE_DIR or AppDirs(appname="numba", appauthor=False).user_cache_dir
    try:
        installed = (root / MANIFEST).stat().st_mtime_ns
    except OSError:
        installed = 0
    tag = hashlib.sha256(f"{root}|{installed}".encode()).hexdigest()[:16]
    return Path(base) / f"platform_sim_kernels_{tag}"


@cache
def cache_folder(relative_dir: str) -> Path | None:
    """The writable folder for the kernels of the package's sub-folder ``relative_dir`` ('.' for the
    package itself): the shipped one, or a user-wide copy of it when it is read-only; None if neither
    can be written (numba's default locators then apply)."""
    root = cache_root()
    if root is None:
        return None
    folder = root / relative_dir
    if writable(folder):
        return folder
    copy = _user_folder(root) / relative_dir
    if not writable(copy):
        return None
    if folder.is_dir():
        for entry in folder.iterdir():
            target = copy / entry.name
            if entry.is_file() and not target.exists():
                partial = copy / f".{entry.name}.{os.getpid()}.tmp"
                shutil.copyfile(entry, partial)
                os.replace(partial, target)
    return copy


def _register() -> type | None:
    """Put :class:`ShippedKernelLocator` first among numba's cache locators; None (and numba left
    as it is) when numba's caching internals are not the ones this module knows."""
    try:
        from numba.core import caching
    except ImportError:
        return None
    base: Any = getattr(caching, "_CacheLocator", None)
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    locators = getattr(impl, "_locator_classes", None)
    if base is None or not isinstance(locators, list):
        return None
    for existing in locators:
        if getattr(existing, "platform_sim_locator", False):
            return existing

    class ShippedKernelLocator(base):
        """numba's cache of the package's kernels, in the shipped folder (or, in a checkout, beside
        the source as numba's own locator puts it), its index keyed on the content of the kernel's
        source file and of the whole package (:func:`package_hash`)."""

        platform_sim_locator = True

        def __init__(self, py_func, py_file: str, folder: Path):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = str(folder)

        def get_cache_path(self) -> str:
            return self._cache_path

        def get_source_stamp(self):
            return ("sha256", source_hash(self._py_file), package_hash())

        def get_disambiguator(self) -> str:
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            try:
                relative = Path(py_file).resolve().relative_to(PACKAGE)
                if relative.suffix != ".py":
                    return None
                if cache_root() is None:  # a checkout: beside the source, as numba would
                    folder = Path(py_file).parent / "__pycache__"
                    return cls(py_func, py_file, folder) if writable(folder) else None
                folder = cache_folder(relative.parent.as_posix())
                if folder is None:
                    return None
                return cls(py_func, py_file, folder)
            except Exception:  # any surprise: numba's default locators
                return None

    locators.insert(0, ShippedKernelLocator)
    return ShippedKernelLocator


def _ours(cache: Any) -> bool:
    """Whether a numba cache belongs to one of the package's kernels (remembered on the cache)."""
    mine = getattr(cache, "_platform_sim_kernel", None)
    if mine is None:
        try:
            mine = Path(cache._py_func.__code__.co_filename).resolve().is_relative_to(PACKAGE)
        except Exception:
            mine = False
        cache._platform_sim_kernel = mine
    return mine


def _load_without_compiler() -> bool:
    """Make numba's function cache load the package's kernels without readying its compiler (see
    the module's notes); False (and numba left as it is) with numba internals this module does not
    know."""
    try:
        from numba.core import caching
        from numba.core.runtime import rtsys
    except ImportError:
        return False
    cache_class: Any = getattr(caching, "FunctionCache", None)
    numba_load = getattr(cache_class, "load_overload", None)
    if numba_load is None or getattr(numba_load, "platform_sim_light", False):
        return numba_load is not None
    if not all(hasattr(cache_class, name) for name in ("_load_overload", "_guard_against_spurious_io_errors")):
        return False
    if not callable(getattr(rtsys, "initialize", None)):
        return False
    ready: set[int] = set()

    def load_overload(self, sig, target_context):
        if not _ours(self):
            return numba_load(self, sig, target_context)
        if id(target_context) not in ready:
            rtsys.initialize(target_context)  # what numba's refresh does first: its runtime
            import numba.cpython.hashing  # noqa: F401  (installs the hashing secrets' symbols)

            ready.add(id(target_context))
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)

    load_overload.platform_sim_light = True  # type: ignore[attr-defined]
    load_overload.__doc__ = numba_load.__doc__
    cache_class.load_overload = load_overload
    return True


try:
    registered = _register()
except Exception:  # numba internals unlike those above: numba's default caching
    registered = None
try:
    light_loading = _load_without_compiler()
except Exception:  # numba internals unlike those above: numba's own loading
    light_loading = False
