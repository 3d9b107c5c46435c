"""A worker's copy of the project's code: the same as the main process's, or none.

A worker of an existing Dask cluster outlives the run: the researcher edits
``experiments/fit.py`` and runs again, and the worker still has the old
module imported. Its stage would then run the old code under the new code's
cache key, and the cache would hold a wrong result that nothing invalidates.

So each task carries :func:`project_sources`: a digest of every project
source file the main process has imported, and of every file outside the
project whose code the stages' keys follow by source (a folder on
``PYTHONPATH``, a library installed with ``pip install -e``). Before a task,
the worker compares them with the files as it imported them
(:func:`use_sources`); if any differ, it forgets every project module and
imports the project again. If a file still differs after that (it changed
during the run, or the worker's copy of the project is another version), the
task fails with a message naming the file (:func:`check_sources`), instead of
running other code.

A worker digests each module right after importing it: after it imports a
task's module, and after each stage (:func:`running_stage`), which may have
imported a project module inside its body (``from experiments.helpers import
transform``). A file that changed since shortly before the stage started may
have changed after the stage imported it: the worker does not know which code
it holds, and the next task that names the file makes it import the project
again. (Digested later, at the next run, the edited file would pass for the
code the worker still runs.)

Only what the main process has imported is compared; a module that the
stages' keys do not follow, the worker imports from its own files.

Such a worker also serves whichever project sends it tasks, and two projects
may well name their modules alike (each its ``experiments/cfg.py``). A task
from another project folder than the previous task's first forgets that
project's modules and takes its folder off ``sys.path`` (:func:`use_root`), so
that the task's imports find its own project's files.

assay's own code is checked the same way, with one digest of all its source
files (:func:`assay_identity`): a worker keeps the assay it imported when it
started, so after an upgrade it would run stages with the old one.
"""

from __future__ import annotations

import contextlib
import importlib
import linecache
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import xxhash

from assay.codeprint import in_project
from assay.errors import AssayError
from assay.hashing import file_checksum

_SEEN: dict[str, tuple[ModuleType, str, str]] = {}
"""Module name -> (the module, its source file, the file's digest right after it was
imported; ``UNKNOWN`` if the file may have changed since)."""
UNKNOWN = ""
"""The digest of a module whose file may have changed after it was imported: no main
process's digest is equal to it."""
_SEEN_COUNT: dict[tuple[str, frozenset[str]], int] = {}
"""(Project root, files outside it) -> how many modules were imported when they were last
looked for."""
_RUNNING: list[float] = []
"""When the stage that this worker runs now started (empty between stages: a worker process
runs one at a time, see :data:`assay.remote._ONE_TASK_AT_A_TIME`)."""
_CHANGE_MARGIN_S = 5.0
"""A file modified less than this before a stage started may have changed after the stage
imported it: file times are the file server's clock (or coarse) and this worker's may differ."""
_ASSAY: list[str] = []
"""This process's :func:`assay_identity`, once computed."""
_ROOT: list[tuple[str, bool]] = []
"""The project folder of this worker's latest task, and whether assay put it on ``sys.path``."""


def assay_identity() -> str:
    """This process's assay: its version and a digest of its source files (computed once)."""
    if not _ASSAY:
        import assay

        folder, digest = _assay_folder(), xxhash.xxh3_64()
        try:
            for path in sorted(folder.rglob("*.py")):
                digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
        except OSError:  # not files on disk (a zip, a frozen app): the version must do
            _ASSAY.append(assay.__version__)
        else:
            _ASSAY.append(f"{assay.__version__}+{digest.hexdigest()[:12]}")
    return _ASSAY[0]


def check_assay(expected: str) -> None:
    """Worker side, before a task: raise if this process's assay is not the main process's.

    An empty ``expected`` says the run started this worker itself (see
    :attr:`assay.executor.Executor.own_workers`): there is nothing to check.
    """
    if not expected:
        return
    found = assay_identity()
    if "+" not in found or "+" not in expected:  # one side has only its version
        found, expected = found.partition("+")[0], expected.partition("+")[0]
    if found != expected:
        raise AssayError(
            f"The worker (pid {os.getpid()}) runs another assay than the main process (the "
            f"worker's: {found}, from {_assay_folder()}; the run's: {expected}), so nothing "
            "was run there. A worker keeps the assay it imported when it started: restart the "
            "cluster's workers after installing or upgrading assay, from the run's Python "
            "environment."
        )


def _assay_folder() -> Path:
    import assay

    return Path(assay.__file__).parent


def project_sources(root: str, outside: Iterable[str] = ()) -> dict[str, str]:
    """``{source file: digest}`` of the imported modules of the project at ``root``, and of
    those imported from the files ``outside`` it (code that fingerprints follow by source
    although it is not the project's: a folder on ``PYTHONPATH``, an editable install)."""
    outside = frozenset(outside)
    _note_imported(root, outside)
    return {
        path: digest
        for _, path, digest in _SEEN.values()
        if path in outside or in_project(path, root)
    }


def use_root(root: str) -> None:
    """Worker side, before importing a task: import from the project folder ``root``.

    If the previous task came from another project folder, that project's modules are
    forgotten (with every project module seen: they may hold references to them) and its
    folder leaves ``sys.path``, so that ``import experiments.cfg`` finds this project's
    file, not the one of the same name the worker imported for the other project.
    """
    if _ROOT and _ROOT[0][0] == root:
        if root not in sys.path:  # a stage took it away
            sys.path.insert(0, root)
        return
    if _ROOT:
        previous, added = _ROOT.pop()
        if added:
            while previous in sys.path:
                sys.path.remove(previous)
        for name, module in list(sys.modules.items()):
            if _imported_from(module, previous) and not _imported_from(module, root):
                del sys.modules[name]
        forget_project()
    added = root not in sys.path
    if added:
        sys.path.insert(0, root)
    _ROOT.append((root, added))


def _imported_from(module: ModuleType, folder: str) -> bool:
    """Whether ``module`` is the code of the project at ``folder`` (a package too, whose
    ``__path__`` alone says where it is when it has no ``__init__.py``)."""
    try:
        places = [getattr(module, "__file__", None), *getattr(module, "__path__", ())]
        return any(isinstance(p, str) and in_project(p, folder) for p in places)
    except Exception:  # a module with an odd __path__ is no project's
        return False


def use_sources(sources: dict[str, str], root: str) -> None:
    """Worker side, before importing a task: make stale project modules go away.

    If a project module was imported from a file whose digest is not the main
    process's, every project module is forgotten (the others may hold
    references to it), so that the task's import reads the files again.
    """
    if not sources:
        return
    found = project_sources(root, sources)
    if any(found.get(path, digest) != digest for path, digest in sources.items()):
        forget_project()


def check_sources(sources: dict[str, str], root: str) -> None:
    """Worker side, after importing a task: raise if a project file is not the main process's."""
    if not sources:
        return
    found = project_sources(root, sources)
    differ = sorted(p for p, digest in sources.items() if found.get(p, digest) != digest)
    if differ:
        names = ", ".join(os.path.relpath(p, root) if in_project(p, root) else p for p in differ)
        raise AssayError(
            f"The worker (pid {os.getpid()}) sees another version of {names} than the main "
            "process: the file changed while the run was going on, or the worker's copy of "
            "the project is not the same. Every worker must see the same project files; run "
            "again once they do."
        )


@contextmanager
def running_stage(root: str, sources: Iterable[str]) -> Iterator[None]:
    """Worker side, around a stage: digest the modules it imports inside its body.

    ``root`` is the task's project folder and ``sources`` the files the main process
    sent (:func:`project_sources`). A module whose file changed since shortly before
    the stage started is noted as of unknown code (see the module's docstring).
    """
    started = time.time()
    _RUNNING.append(started)
    try:
        yield
    finally:
        _note_imported(root, frozenset(sources))  # its start still counts
        _RUNNING.remove(started)


def forget_project() -> None:
    """Drop every project module seen, so that the next import reads the files again.

    A submodule is also taken off the package that holds it as an attribute: a package
    without an ``__init__.py`` (``experiments/``) has no file, so it stays imported, and
    ``from experiments import helpers`` took the old ``helpers`` from it, unread and
    unchecked.
    """
    for name, (module, _, _) in _SEEN.items():
        if sys.modules.get(name) is module:
            del sys.modules[name]
        package, _, attribute = name.rpartition(".")
        holder = sys.modules.get(package) if package else None
        if holder is not None and getattr(holder, attribute, None) is module:
            with contextlib.suppress(AttributeError, TypeError):
                delattr(holder, attribute)
    _SEEN.clear()
    _SEEN_COUNT.clear()
    importlib.invalidate_caches()
    linecache.checkcache()  # tracebacks show the lines of the new files


def _note_imported(root: str, outside: frozenset[str] = frozenset()) -> None:
    """Digest the files of the project's modules (and of those from ``outside``) imported,
    or imported again, since the last call.

    While stages run, a module may have been imported by one of them, at any time since
    it started: one whose file changed since then is noted as :data:`UNKNOWN`.
    """
    gone = [name for name, (module, _, _) in _SEEN.items() if sys.modules.get(name) is not module]
    for name in gone:
        del _SEEN[name]
    if not gone and _SEEN_COUNT.get((root, outside)) == len(sys.modules):
        return
    since = min(_RUNNING, default=None)
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name in _SEEN or not path or not path.endswith(".py"):
            continue
        path = os.path.abspath(path)
        if not (path in outside or in_project(path, root)):
            continue
        try:
            _SEEN[name] = (module, path, _digest_since(path, since))
        except OSError:  # deleted since it was imported: nothing to compare
            continue
    _SEEN_COUNT[(root, outside)] = len(sys.modules)


def _digest_since(path: str, since: float | None) -> str:
    """The digest of the file at ``path``, or :data:`UNKNOWN` if it was modified after
    ``since`` (less :data:`_CHANGE_MARGIN_S`). Read first, then its time: a change made
    in between shows in the time."""
    digest = file_checksum(path)
    if since is not None and os.stat(path).st_mtime >= since - _CHANGE_MARGIN_S:
        return UNKNOWN
    return digest
