"""``assay export docker RUN``: a Docker build context that re-creates a run.

::

    data/runs/RUN_ID/docker/          (or -o DIR)
        Dockerfile                    python:<the run's major.minor>-slim, pinned packages
        .dockerignore
        README.md                     how to build, run, reproduce, explore
        wheels/assay-<v>-py3-none-any.whl   the assay that made the run
        run/                          the run's full export (code, cache, run.json,
                                      requirements.txt; see assay.export.full)

The image installs the run's pinned packages (``run/requirements.txt``) and
this assay, puts the code snapshot in ``/project`` and the exported run
(record and cache) in ``/project/data/runs/RUN_ID``. Its default command runs
the experiment again as recorded, taking every result from the run's cache;
``assay reproduce data/runs/RUN_ID`` inside it recomputes everything and
compares; ``docker run -it IMAGE bash`` opens a shell to explore.

When the run was exported with ``--store-full``, that export is used as it
is (the code as it was then); otherwise the run is exported now, with the
run's code taken from git if it changed since (``run.json`` says whether the
snapshot is the run's code, in ``export.code.same_as_run`` and ``.note``; see
:mod:`assay.export.full`).

:func:`build_image` builds the image when a Docker engine answers
(``docker info``); otherwise it returns the exact command to run elsewhere.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import AssayError
from assay.export.destination import DOCKERFILE_MARKER, check_folder, is_build_context
from assay.export.full import export_run, not_included, portable
from assay.export.markdown import markdown_code
from assay.export.reproduce import rerun_spec
from assay.export.wheel import build_wheel
from assay.run_record import build_run_record, read_run_record, refuse_unfinished
from assay.store import RunStore, safe_id_part

__all__ = ["DockerContext", "build_image", "export_docker_context"]

DOCKERIGNORE = """\
# Only what the Dockerfile copies belongs in the build context.
run/reproductions/
run/docker/
**/__pycache__/
**/*.pyc
"""


@dataclass
class DockerContext:
    """A written build context."""

    folder: Path
    """The context folder (holds the Dockerfile)."""
    tag: str
    """The image name to build, e.g. ``assay-iris-0007-20261125t184512``."""
    run_id: str
    """The run it re-creates."""

    @property
    def build_command(self) -> str:
        """``docker build -t TAG FOLDER``."""
        return f"docker build -t {self.tag} {shlex.quote(str(self.folder))}"


def export_docker_context(
    config: Any,
    run_ref: int | str,
    *,
    destination: str | Path | None = None,
    tag: str | None = None,
) -> DockerContext:
    """Write the build context of a run (see the module docs) and return it."""
    with RunStore(config.store_path) as store:
        run = store.get_run(run_ref)
        record = build_run_record(store, run.id)
    refuse_unfinished(record["run"], "docker")
    full = Path(config.runs_dir) / run.id
    folder = Path(destination) if destination else full / "docker"
    # Before anything is removed or written: a run the image could not re-run (a parameter
    # file outside the project) left a half-written context, with no Dockerfile, in place
    # of the one there.
    rerun_spec(portable(record, Path(config.root)))
    _refuse_another_run(folder, run.id)
    _clear(folder, config.root)
    if (full / "run.json").is_file():
        shutil.copytree(
            full,
            folder / "run",
            symlinks=True,
            ignore=shutil.ignore_patterns("docker", "reproductions"),
        )
    else:
        export_run(config, run.id, destination=folder / "run")
    record = read_run_record(folder / "run" / "run.json")
    wheel = build_wheel(folder / "wheels")
    context = DockerContext(folder, tag or _tag(run.id), run.id)
    (folder / "Dockerfile").write_text(dockerfile(record, wheel.name), encoding="utf-8")
    (folder / ".dockerignore").write_text(DOCKERIGNORE, encoding="utf-8")
    (folder / "README.md").write_text(_readme(record, context), encoding="utf-8")
    return context


def dockerfile(record: dict, wheel_name: str) -> str:
    """The Dockerfile text for a run record and the name of the assay wheel."""
    run = record["run"]
    spec = rerun_spec(record)
    version = (record.get("provenance") or {}).get("python_version") or run["python"].split()[-1]
    major_minor = ".".join(version.split(".")[:2])
    image = "pypy" if run["python"].lower().startswith("pypy") else "python"
    home = f"/project/data/runs/{_folder_name(run['id'])}"
    command = json.dumps(["assay", *spec.cli_args()])
    about = {k: _one_line(run[k]) for k in ("id", "experiment", "number", "python", "platform")}
    return f"""\
{DOCKERFILE_MARKER} for run {about["id"]}
# (experiment {about["experiment"]}, run {about["number"]}, recorded with {about["python"]} on
# {about["platform"]}). Build: docker build -t IMAGE .   See README.md.
FROM {image}:{major_minor}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The run's Python packages, pinned, then the assay that made the run.
COPY run/requirements.txt /tmp/assay-export/requirements.txt
RUN pip install -r /tmp/assay-export/requirements.txt
COPY wheels/{wheel_name} /tmp/assay-export/{wheel_name}
RUN pip install --no-deps /tmp/assay-export/{wheel_name}

# The code, and the exported run (record, code, cache) for `assay reproduce`.
WORKDIR /project
COPY run/code/ /project/
COPY run/run.json {home}/run.json
COPY run/code/ {home}/code/
COPY run/cache/ {home}/cache/
ENV ASSAY_CACHE_DIR={home}/cache

# Re-run the experiment as recorded (results come from the run's cache, for the artifacts
# it holds: README.md says which; the others are computed again).
CMD {command}
"""


def build_image(context: DockerContext, timeout_s: float = 3600) -> tuple[bool, str]:
    """Build the image if a Docker engine answers; ``(built, message)``.

    Without an engine (no ``docker`` command, or ``docker info`` fails) nothing
    is run and the message gives the exact command to build it elsewhere.
    """
    docker = shutil.which("docker")
    if docker is None or not _engine_answers(docker):
        why = "no `docker` command" if docker is None else "no Docker engine answers `docker info`"
        return False, (
            f"Not built: {why} here. Build the image where Docker runs (copy the folder "
            f"there first if needed):\n  {context.build_command}"
        )
    proc = subprocess.run(
        [docker, "build", "-t", context.tag, str(context.folder)],
        stdin=subprocess.DEVNULL,
        timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise AssayError(
            f"`{context.build_command}` failed (exit status {proc.returncode}); its output is "
            "above. A package in run/requirements.txt may not install on Linux: edit the file "
            "and build again."
        )
    return True, f"Built image {context.tag}. Run it with: docker run --rm {context.tag}"


def _engine_answers(docker: str) -> bool:
    try:
        proc = subprocess.run(
            [docker, "info"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _refuse_another_run(folder: Path, run_id: str) -> None:
    """Refuse to replace the build context of another run (its ``run/`` may be the only
    export of that run)."""
    if not is_build_context(folder):
        return
    with open(folder / "Dockerfile", encoding="utf-8", errors="replace") as file:
        first = file.readline().strip()
    other = first.removeprefix(f"{DOCKERFILE_MARKER} for run ").strip()
    if other != run_id:
        raise AssayError(
            f"{folder} holds the Docker build context of run {other or '(unknown)'}, not of "
            f"run {run_id}; writing there would replace it. Choose another folder with -o, "
            "or remove it first."
        )


def _clear(folder: Path, root: Any) -> None:
    """Make ``folder`` empty; refuse to empty a folder this module did not write."""
    check_folder(folder, root=root, what="a build context", replaceable=is_build_context)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def _one_line(value: Any) -> str:
    """Text for a comment line of the Dockerfile: line breaks (which would start
    instructions of their own) and other control characters become spaces."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", str(value))


def _folder_name(run_id: str) -> str:
    """The run's folder in the image: its id, with any character a Dockerfile or a shell
    would read (an id recorded before ids were restricted) replaced by ``_``."""
    return safe_id_part(run_id)


_SEPARATORS = re.compile(r"[._-]{2,}")


def _tag(run_id: str) -> str:
    """The image name for a run: ``assay-`` and its id, lower case, as Docker's reference
    grammar has names (``[a-z0-9]+`` parts joined by one ``.``, ``_`` or ``__``, or by
    dashes), so that ``docker build -t`` takes it for any experiment's name (``_scratch``,
    ``a___b``: "invalid reference format")."""
    text = re.sub(r"[^a-z0-9_.-]+", "-", run_id.lower())
    text = _SEPARATORS.sub(_one_separator, text).strip("-._")[:100].rstrip("-._")
    return f"assay-{text or 'run'}"


def _one_separator(match: re.Match) -> str:
    """A run of separators as Docker's grammar allows one: dashes, or ``__``, as they are;
    any other run (``-_``, ``___``, ``._``) as one dash."""
    run = match.group(0)
    return run if run == "__" or set(run) == {"-"} else "-"


def _what_comes_from_cache(record: dict) -> str:
    """What the image's default command takes from the run's cache, for the README: all
    of the run's artifacts, some, or none (an export made after ``assay cache gc``)."""
    total = len({a["key"] for a in record.get("artifacts") or []})
    held = ((record.get("export") or {}).get("artifacts") or {}).get("copied", 0)
    if held >= total:
        return f"everything comes from the run's cache: all {total} of its artifacts"
    if not held:
        return f"the image holds none of the run's {total} artifacts: every stage is computed again"
    return f"the image holds {held} of the run's {total} artifacts; the others are computed again"


def _left_out(record: dict) -> str:
    """The README's paragraph on the run's artifacts the image does not hold (``""`` when
    it holds them all)."""
    said = not_included(record)
    if said is None:
        return ""
    return (
        f"\n**Not in the image:** of the run's artifacts, {said}. `export.artifacts` in "
        "`run/run.json` lists them. To include them, run the experiment again in the "
        "project (that puts them back in its cache), then export this run again.\n"
    )


def _readme(record: dict, context: DockerContext) -> str:
    run = record["run"]
    spec = rerun_spec(record)
    rerun = shlex.join(["assay", *spec.cli_args()])
    editable = sorted(
        n for n in ((record.get("provenance") or {}).get("editable") or {}) if n != "assay"
    )
    note = (
        f"\nPackages the run had in editable mode are not in the image: {', '.join(editable)}. "
        "Add them to the code or to run/requirements.txt.\n"
        if editable
        else ""
    )
    conda = (
        "\nThe run used a conda environment; its packages are listed in "
        "run/environment.yml. This image installs the Python packages with pip.\n"
        if (record.get("provenance") or {}).get("conda")
        else ""
    )
    folder = _folder_name(run["id"])
    return f"""\
# Docker image for assay run {_one_line(run["id"])}

Build (needs Docker):

    {context.build_command}

Re-run the experiment as recorded ({_what_comes_from_cache(record)}):

    docker run --rm {context.tag}
{_left_out(record)}
Recompute everything and compare each artifact with the run's:

    docker run --rm {context.tag} assay reproduce data/runs/{folder}

Explore (the code is in /project, the run in /project/data/runs/{folder}):

    docker run --rm -it {context.tag} bash

The command the image runs: {markdown_code(rerun)}.
{note}{conda}"""
