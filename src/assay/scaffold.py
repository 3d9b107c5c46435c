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
a folder that already holds a project, only adds what is missing.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["create_project"]

FOLDERS = ("experiments", "params", "data/cache", "data/runs", "reports", "logs")
"""The folders of a project (see :mod:`assay.config` for their settings)."""

TEMPLATES = {
    "experiments/example.py": "example_experiment.py",
    "params/example.py": "example_params.py",
}
"""Project file -> the template in ``assay/templates/`` it is copied from."""

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


def create_project(folder: Path) -> list[Path]:
    """Create the folders and starter files of an assay project in ``folder``.

    ``folder`` is created if needed. Existing files and folders are left
    untouched, so this is safe to run in a project that already exists.

    Returns:
        What was created, as paths under ``folder`` (folders first), without
        anything that already existed.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    created: list[Path] = []
    for name in FOLDERS:
        path = folder / name
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            created.append(path)
    files = {"assay.toml": ASSAY_TOML, ".gitignore": GITIGNORE}
    files.update({target: read_template(source) for target, source in TEMPLATES.items()})
    for name, text in files.items():
        path = folder / name
        if _write_new(path, text):
            created.append(path)
    return created


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
