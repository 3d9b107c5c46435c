"""``assay init``: lay out a new project, with an example that runs at once.

::

    $ assay init my-study && cd my-study
    $ assay run example -p example

creates::

    my-study/
        assay.toml            settings, all commented out (the defaults apply)
        .gitignore            keeps results, reports, logs and the run store out of git
        experiments/example.py
        params/example.py
        data/cache/  data/runs/  reports/  logs/

The example needs only the standard library, so it runs on a fresh install.
Nothing that exists is ever overwritten: running ``assay init`` again, or in
a folder that already holds a project, only adds what is missing (the lines
of assay's ``.gitignore`` that an existing one lacks, too). An
``experiments/example.py`` of the user's own is kept, and then the example's
parameter file is not written either (it imports the example's ``Params``).

A folder whose settings move those folders (``experiments_dir = "src/exps"`` in
``[tool.assay]`` of its ``pyproject.toml``, in ``assay.toml``, or an ``ASSAY_*``
variable) gets them where its settings put them, so that the example runs with
the command ``assay init`` prints, and its ``.gitignore`` names the folders of
results there. A folder set outside the project (a shared cache, a cache at a
URL) is left for the runs to create.
"""

from __future__ import annotations

import contextlib
import keyword
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from assay.config import ProjectConfig, enclosing_project
from assay.errors import ProjectError

__all__ = ["ProjectInit", "init_project"]

FOLDERS = ("experiments", "params", "data/cache", "data/runs", "reports", "logs")
"""The folders of a project by default (see :mod:`assay.config` for their settings)."""

FOLDER_SETTINGS = (
    "experiments_dir",
    "params_dir",
    "cache_dir",
    "runs_dir",
    "reports_dir",
    "logs_dir",
)
"""The settings of the folders in :data:`FOLDERS`, in that order."""

TEMPLATES = {
    "experiments/example.py": "example_experiment.py",
    "params/example.py": "example_params.py",
}
"""Project file (in the default layout) -> the template in ``assay/templates/`` it is
copied from."""

ASSAY_TOML = """\
# Settings of this assay project. All are optional: the values shown are the
# defaults. Relative paths are relative to this folder. An environment variable
# overrides each setting but cache_options, e.g. ASSAY_CACHE_DIR=/scratch/me/cache, and
# `assay run --cache DIR` (a relative DIR is taken from the current folder)
# overrides that for one run. The same settings can go
# in pyproject.toml under [tool.assay] instead.

# experiments_dir = "experiments"   # `assay run NAME` runs experiments/NAME.py
# params_dir = "params"             # `-p NAME` reads params/NAME.py
# cache_dir = "data/cache"          # every cached artifact; may be shared
# runs_dir = "data/runs"            # exported runs
# reports_dir = "reports"           # run reports
# logs_dir = "logs"                 # one log file per run
# store_path = "assay.db"           # the run store (SQLite)

# With cache_dir at a URL (s3://bucket/cache, gcs://..., see the README):
# local_cache_dir = "data/cache"    # local copies of what this machine reads or writes
# cache_options = {}                # the filesystem's options, e.g. { profile = "lab" }
"""

GITIGNORE = """\
# Made by assay runs: cached artifacts, reports, logs and the run store.
data/
reports/
logs/
assay.db*
__pycache__/
"""


@dataclass
class ProjectInit:
    """What :func:`init_project` did, for ``assay init`` to tell."""

    folder: Path
    """The project folder."""
    created: list[Path] = field(default_factory=list)
    """Folders and files made, as paths under ``folder`` (folders first)."""
    kept: list[Path] = field(default_factory=list)
    """Starter files that were there already, with other contents: left as they were."""
    ignore_lines: list[str] = field(default_factory=list)
    """Lines added to an existing ``.gitignore`` that lacked them."""
    example: str | None = None
    """The command that runs the example; ``None`` if the folder had an
    ``experiments/example.py`` of its own, so the example was not installed."""
    example_file: Path | None = None
    """Where the example experiment goes, relative to ``folder`` (its experiments
    folder is a setting); ``None`` if that folder is outside the project."""
    outer: Path | None = None
    """The project this new one is inside of (whose commands run below ``folder``
    now use the new one instead), if any."""


def init_project(folder: Path) -> ProjectInit:
    """Create the folders and starter files of an assay project in ``folder``, and say
    what was made, what was there already, and how to run the example.

    The folders go where the project's settings put them (see :func:`project_layout`).
    """
    folder = Path(folder)
    here = folder.resolve()
    done = ProjectInit(folder, outer=enclosing_project(here.parent))
    if enclosing_project(here) == here:
        done.outer = None  # a project already: init only adds what it lacks
    config = ProjectConfig.load(folder)
    layout = project_layout(config)
    folders = [name for name in layout.values() if name is not None]
    _check_no_file_in_the_way(folder, folders)
    folder.mkdir(parents=True, exist_ok=True)
    for name in folders:
        path = folder / name
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            done.created.append(path)
    files = {"assay.toml": ASSAY_TOML, ".gitignore": _gitignore(config, layout)}
    experiment = parameters = None
    if layout["experiments_dir"] is not None:  # in a folder outside the project: none
        experiment = _in_folder(layout["experiments_dir"], "example.py")
        files[experiment] = read_template(TEMPLATES["experiments/example.py"])
        done.example_file = Path(experiment)
        importing = _example_params(layout["experiments_dir"])
        if layout["params_dir"] is not None and importing is not None:
            parameters = _in_folder(layout["params_dir"], "example.py")
            files[parameters] = importing  # else the example runs with its get_params()
    for name, text in files.items():
        path = folder / name
        # The example's parameters import its Params, which a user's own example.py lacks.
        skip = name == parameters and not _is(folder, experiment, files)
        if not skip and _write_new(path, text):
            done.created.append(path)
        elif name == ".gitignore":
            done.ignore_lines = _add_missing_lines(path, text)
        elif os.path.lexists(path) and not _is(folder, name, files):
            done.kept.append(path)
    # The example: today's, or one an older `assay init` wrote (or the user edited since),
    # which came with its parameter file.
    has_params = parameters is not None and (folder / parameters).is_file()
    if (experiment is not None and _is(folder, experiment, files)) or has_params:
        done.example = "assay run example" + (" -p example" if has_params else "")
    return done


def project_layout(config: ProjectConfig) -> dict[str, str | None]:
    """The folder of each of :data:`FOLDER_SETTINGS` of the project of ``config`` (as its
    settings files and ``ASSAY_*`` variables set them, :meth:`ProjectConfig.load`): a
    path relative to its root (``"experiments"``, ``"src/exps"``), or ``None`` for one
    outside it (a shared cache, a cache at a URL), which ``assay init`` does not create.
    """
    layout: dict[str, str | None] = {}
    for setting in FOLDER_SETTINGS:
        path = Path(getattr(config, setting))
        if setting == "cache_dir" and config.cache_url is not None:
            layout[setting] = None
            continue
        try:
            layout[setting] = path.relative_to(config.root).as_posix()
        except ValueError:
            layout[setting] = None
    return layout


_RESULTS = ("cache_dir", "runs_dir", "reports_dir", "logs_dir")
"""The settings of the folders that runs fill, which git should not track."""


def _gitignore(config: ProjectConfig, layout: dict[str, str | None]) -> str:
    """The ``.gitignore`` of the project of ``config``: :data:`GITIGNORE`, and a line for
    each folder of results (and the run store) that its settings put elsewhere than
    that names, inside the project."""
    lines = GITIGNORE.splitlines()
    covered = [line.rstrip("*/") for line in lines[1:]]
    wanted = [f"{layout[s]}/" for s in _RESULTS if layout.get(s) not in (None, ".")]
    with contextlib.suppress(ValueError):  # a run store outside the project: not in git
        wanted.append(f"{config.store_path.relative_to(config.root).as_posix()}*")
    for line in wanted:
        path = line.rstrip("*/")
        if not any(path == c or path.startswith(f"{c}/") for c in covered):
            lines.append(line)
            covered.append(path)
    return "\n".join(lines) + "\n"


def _example_params(experiments: str) -> str | None:
    """The example's parameter file for a project whose experiments folder is
    ``experiments`` (relative to the project root, which is importable): it imports the
    example's ``Params`` from there. ``None`` if no import can name that folder
    (``my-exps``)."""
    parts = [] if experiments == "." else experiments.split("/")
    if not all(part.isidentifier() and not keyword.iskeyword(part) for part in parts):
        return None
    text = read_template(TEMPLATES["params/example.py"])
    module = ".".join([*parts, "example"])
    return text.replace("from experiments.example import", f"from {module} import", 1).replace(
        "experiments/example.py", "/".join([*parts, "example.py"]), 1
    )


def _in_folder(folder: str, name: str) -> str:
    """The path of file ``name`` in ``folder`` (of :func:`project_layout`), relative to the
    project root."""
    return name if folder == "." else f"{folder}/{name}"


def _check_no_file_in_the_way(folder: Path, folders: list[str]) -> None:
    """Refuse, before anything is made, a project folder ``folder`` where a file stands in
    the place of the project or of one of its ``folders`` (a file named ``logs``):
    ``init`` would stop half-way with "File exists".

    Raises:
        ProjectError: naming the file, and saying nothing was created.
    """
    for target in (folder, *(folder / name for name in folders)):
        blocking = next((p for p in (target, *target.parents) if p.is_file()), None)
        if blocking is not None:
            raise ProjectError(
                f"assay init cannot make the folder {target}: {blocking} is a file. Nothing "
                "was created. Rename or move that file away, then run assay init again."
            )


def _is(folder: Path, name: str, files: dict[str, str]) -> bool:
    """Whether the starter file ``name`` in ``folder`` has the text ``assay init`` writes."""
    try:
        return (folder / name).read_text(encoding="utf-8") == files[name]
    except (OSError, UnicodeDecodeError):
        return False


def _add_missing_lines(path: Path, text: str) -> list[str]:
    """Append to the ``.gitignore`` at ``path`` each line of ``text`` it lacks (``data``
    counts as ``data/``); the lines added."""
    try:
        existing = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []  # not a readable text file: leave it alone
    # A line the file has already, or its negation (`!logs/`: the user wants it kept).
    have = {line.strip().lstrip("!").strip("/") for line in existing.splitlines()}
    lines = text.splitlines()
    missing = [line for line in lines[1:] if line.strip("/") not in have]
    if missing:
        separator = "" if not existing or existing.endswith("\n") else "\n"
        with path.open("a", encoding="utf-8") as handle:
            handle.write(separator + "\n".join([lines[0], *missing]) + "\n")
    return missing


def read_template(name: str) -> str:
    """The text of a template shipped in ``assay/templates/``."""
    return (resources.files("assay") / "templates" / name).read_text(encoding="utf-8")


def _write_new(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless something is already there; whether it wrote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        return False
    return True
