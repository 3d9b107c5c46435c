"""``assay export notebook RUN``: a Jupyter notebook that reloads a run and can re-run it.

The notebook (default ``data/runs/RUN_ID/RUN_ID.ipynb``) has:

1. the run's record: experiment, command, git commit, status;
2. a setup cell that finds the project folder (from the notebook's folder
   upwards; for a notebook saved outside any project, the project it was written
   in) and makes it importable, so pickled objects of your own classes load;
3. the parameter sets, and one cell per artifact loading it with
   ``assay.load(key=...)`` (checksum verified) and showing it — up to
   :data:`SHOWN_ARTIFACTS`; every artifact is in the ``ARTIFACTS`` table;
4. a cell re-running the experiment with ``assay.run_experiment`` exactly as
   recorded (same parameter files, names, indices, overrides), reusing the
   cache unless you set ``overwrite=True``, and a cell comparing the new
   run's artifacts with the recorded ones. In a copy of the run's export on its
   own (no project around it), the re-run reproduces the export's ``code/`` in
   a fresh folder instead (:func:`assay.export.reproduce.reproduce`, ``reuse=True``).

Needs ``nbformat`` to write (``pip install 'assay[notebook]'``) and Jupyter to open.
"""

from __future__ import annotations

import builtins
import json
import keyword
import re
import unicodedata
from pathlib import Path
from typing import Any

from assay.cache import recorded_cache
from assay.errors import AssayError
from assay.export.destination import NOTEBOOK_FORMAT, check_file, is_notebook
from assay.export.markdown import markdown_code, markdown_text
from assay.export.reproduce import rerun_spec
from assay.run_record import build_run_record, refuse_unfinished
from assay.store import RunStore

__all__ = ["SHOWN_ARTIFACTS", "notebook_cells", "write_notebook"]

SHOWN_ARTIFACTS = 40
"""Artifacts that get a cell of their own; the rest are loaded from ``ARTIFACTS`` on demand."""

_SETUP = """\
import json
import os
import sys
from pathlib import Path

import assay
from assay.config import ProjectConfig, enclosing_project
from assay.store import RunStore

RUN_ID = {run_id!r}
RECORDED_STATUS = {status!r}  # how the recorded run ended
HERE = os.getcwd()  # the notebook's folder
WRITTEN_IN = {root}  # the project the notebook was written in
try:  # in the run's export folder (--store-full), or a copy of it: its cache/ holds the run's
    with open(os.path.join(HERE, "run.json"), encoding="utf-8") as file:
        IN_EXPORT = json.load(file)["run"]["id"] == RUN_ID and os.path.isdir(
            os.path.join(HERE, "cache"))
except (OSError, ValueError, KeyError, TypeError):
    IN_EXPORT = False
# The folder with experiments/: this one or one above it; for a notebook saved outside any
# project, the one it was written in (none: a copy of the run's export on its own, which
# the re-run below reproduces from the export's code/).
PROJECT = enclosing_project(Path(HERE))
if PROJECT is None and not IN_EXPORT and WRITTEN_IN and os.path.isdir(WRITTEN_IN):
    PROJECT = enclosing_project(Path(WRITTEN_IN))
IN_PROJECT = PROJECT is not None
PROJECT = PROJECT or Path(HERE).resolve()
os.chdir(PROJECT)
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))  # so your own classes (in pickles) can be imported
CONFIG = ProjectConfig.load(PROJECT)
CACHE = {cache}  # the run's cache (--cache DIR, ASSAY_CACHE_DIR or the project's)
ARTIFACT_CACHE = CACHE  # where the artifacts below load from
if IN_EXPORT:
    ARTIFACT_CACHE = os.path.join(HERE, "cache")
    sys.path.append(os.path.join(HERE, "code"))  # the run's code, for its classes
print("project:", PROJECT)
print("artifacts from:", ARTIFACT_CACHE or CONFIG.cache_location)"""

_COMPARE = """\
if "manager" not in globals():  # the re-run raised: a run that failed fails again
    print(f"The re-run of {{RUN_ID}} above did not finish, so there is nothing to compare "
          f"(the recorded run's status: {{RECORDED_STATUS}}).")
elif manager is None:  # reproduced from the export's code/
    counts = reproduction.counts()
    print(f"{{counts['identical']}} of {{len(reproduction.checks)}} artifacts of {{RUN_ID}} came out identical "
          f"(re-run in {{reproduction.workdir}}): {{counts}}")
else:
    recorded = {{a["key"]: a["checksum"] for a in RECORDED}}
    with RunStore(CONFIG.store_path) as store:
        again = {{a.key: a.checksum for a in store.artifacts(manager.run_id)}}
    same = [key for key, checksum in recorded.items() if again.get(key) == checksum]
    print(f"{{len(same)}} of {{len(recorded)}} artifacts of {{RUN_ID}} came out with the same key and checksum")"""

_FROM_EXPORT = """\
if IN_EXPORT and not IN_PROJECT:
    # A copy of the run's export on its own: its code is in code/, not here. Re-run that
    # in a fresh folder (reproductions/<time>/ here), as `assay reproduce . --reuse` does.
    from assay.export.reproduce import reproduce

    manager, reproduction = None, reproduce(HERE, reuse=True)
else:
"""


def write_notebook(
    config: Any, run_ref: int | str, *, destination: str | Path | None = None
) -> Path:
    """Write the notebook of a run and return its path (see the module docs).

    ``destination`` (default ``data/runs/RUN_ID/RUN_ID.ipynb``) may be a new file
    or a notebook assay wrote before, which is overwritten; any other file is
    refused (see :mod:`assay.export.destination`).
    """
    try:
        import nbformat
    except ImportError as exc:  # pragma: no cover - nbformat is in the dev and notebook extras
        raise AssayError(
            "Writing a notebook needs nbformat: pip install 'assay[notebook]' (or nbformat)."
        ) from exc
    with RunStore(config.store_path) as store:
        record = build_run_record(store, run_ref)
    refuse_unfinished(record["run"], "notebook")
    settings = record["run"].get("config") or {}
    if settings.get("cache_dir"):  # a project moved since the run: its cache moved with it
        settings["cache_dir"] = recorded_cache(settings["cache_dir"], config)
    run_id = record["run"]["id"]
    path = Path(destination) if destination else Path(config.runs_dir) / run_id / f"{run_id}.ipynb"
    check_file(path, what="a notebook", replaceable=is_notebook)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["assay"] = {"format": NOTEBOOK_FORMAT, "run": run_id}
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    cells = notebook_cells(record, root=config.root)
    for kind, source in cells:
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        notebook.cells.append(make(source))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))
    return path


def notebook_cells(record: dict, root: Any = None) -> list[tuple[str, str]]:
    """The notebook's cells as ``("markdown" | "code", source)`` pairs.

    ``root`` makes absolute project paths relative (the run's cache among them, when it
    is inside the project). The artifacts load from, and the re-run uses, the cache the
    run used, however it was chosen: ``--cache DIR``, ``ASSAY_CACHE_DIR`` (which the
    notebook's kernel may not have) or the project's configuration.
    """
    run = record["run"]
    git = (record.get("provenance") or {}).get("git") or {}
    commit = git.get("commit") or "not in git"
    if git.get("dirty"):
        commit += " (with uncommitted changes; the diff is in the run record)"
    text = markdown_text
    cells = [
        ("markdown", f"# assay run {text(run['id'])}\n\n"
                     f"Experiment **{text(run['experiment'])}**, run {text(run['number'])}, "
                     f"{text(run['status'])}, started {text(run['started'])} on "
                     f"{text(run['host'])} with {text(run['python'])}.\n\n"
                     f"- command: {markdown_code(run['command'])}\n- code: {text(commit)}\n\n"
                     "Run this notebook from the project folder or any folder inside it (saved "
                     "outside any project, it uses the project it was written in). In the run's "
                     "export folder (or a copy of it) it loads the artifacts from the export's "
                     "`cache/`."),
        ("code", _SETUP.format(run_id=run["id"], status=run["status"], root=_written_in(root),
                               cache=_cache_dir(run, root))),
        ("markdown", "## Parameter sets"),
        ("code", f"PARAM_SETS = {_literal(record['param_sets'])}\n"
                 "{p['name']: p['values'] for p in PARAM_SETS}"),
    ]  # fmt: skip
    artifacts = record["artifacts"]
    labels = _labels(artifacts)
    table = dict(zip(labels, (a["key"] for a in artifacts)))
    recorded = [{"key": a["key"], "checksum": a["checksum"]} for a in artifacts]
    cells += [
        ("markdown", f"## Artifacts\n\n{_used(artifacts)} Each is loaded with its checksum "
                     f"verified, by the cacher that saved it.{_unsaved(record)}"),
        ("code", f"ARTIFACTS = {_literal(table)}\nRECORDED = {_literal(recorded)}\n"
                 "CHECKSUMS = {a['key']: a['checksum'] for a in RECORDED}\n\n\n"
                 "def load(label):\n"
                 "    \"\"\"Load an artifact by its label in ARTIFACTS: the run's bytes only.\"\"\"\n"
                 "    key = ARTIFACTS[label]\n"
                 "    return assay.load(key=key, cache_dir=ARTIFACT_CACHE, checksum=CHECKSUMS.get(key))"
                 "\n\n\nlist(ARTIFACTS)"),
    ]  # fmt: skip
    names = set(TAKEN_NAMES)
    for artifact, label in zip(artifacts[:SHOWN_ARTIFACTS], labels):
        variable = _variable(artifact, names)
        cells.append(("markdown", f"### {markdown_text(label)}"))
        cells.append(
            (
                "code",
                f"{variable} = assay.load(key={artifact['key']!r}, cache_dir=ARTIFACT_CACHE"
                f"{_checksum_argument(artifact)})\n{variable}",
            )
        )
    if len(artifacts) > SHOWN_ARTIFACTS:
        cells.append(("markdown", f"The other {len(artifacts) - SHOWN_ARTIFACTS} labels: "
                                  "`load(label)` with a label from `ARTIFACTS`."))  # fmt: skip
    cells.append(("markdown", "## Re-run"))
    try:
        spec = rerun_spec(record, root=root)
    except AssayError as exc:
        cells.append(("markdown", f"This run cannot be re-run from its files: {text(exc)}"))
        return cells
    call = [repr(spec.experiment), repr(spec.param_files)]
    for name in ("names", "indices", "overrides"):
        if getattr(spec, name):
            call.append(f"{name}={getattr(spec, name)!r}")
    if spec.prefix:
        call.append(f"prefix={spec.prefix!r}")
    if spec.lazy:
        call.append("lazy=True")
    if spec.ignore_lazy:
        call.append("ignore_lazy=True")
    if spec.dry_cache:
        call.append("dry_cache=True")  # as it ran: it was not to write the cache
    if _cache_dir(run, root) != "None":
        call.append("cache_dir=CACHE")  # the cache it ran with, as its artifacts are loaded
    call += ["overwrite=False", f"notes={'re-run of ' + run['id'] + ' from its notebook'!r}",
             "project_root=PROJECT"]  # fmt: skip
    indented = "".join(f"        {a},\n" for a in call)
    cells += [
        ("markdown", "The experiment again, as recorded. Stages whose results are cached are "
                     "reused; set `overwrite=True` to recompute everything. In a copy of the "
                     "run's export on its own, without the project, the cell re-runs the "
                     "export's `code/` in a fresh folder, `reproductions/<time>/`, as "
                     "`assay reproduce . --reuse` does (run that in a terminal to recompute "
                     "everything)."),
        ("code", _FROM_EXPORT + f"    manager = assay.run_experiment(\n{indented})\n"
                 "manager.run_info if manager is not None else reproduction.workdir"),
        ("code", _COMPARE.format()),
    ]  # fmt: skip
    return cells


def _written_in(root: Any) -> str:
    """Python source for the project folder the notebook is written in (``None`` when not
    known): where a notebook saved outside any project (``-o ~/notebooks/run.ipynb``)
    finds the experiment, its code and its cache."""
    return repr(str(Path(root).resolve())) if root is not None else "None"


def _cache_dir(run: dict, root: Any = None) -> str:
    """Python source for the cache the run used: a folder inside the project relative to
    ``PROJECT`` (so that a copy of the project uses its own copy), any other folder or a
    URL as recorded; ``"None"`` (the project's cache, as the notebook's kernel finds it)
    for a run that recorded none.

    Never ``"None"`` for a recorded cache, even the project's: the run may have had it
    from ``ASSAY_CACHE_DIR``, which a notebook's kernel, started elsewhere, does not have."""
    cache = (run.get("config") or {}).get("cache_dir")
    if not cache:
        return "None"
    if "://" in str(cache):
        return repr(str(cache))
    if not Path(cache).is_absolute():  # as the project's configuration reads it
        return f"str(PROJECT / {Path(cache).as_posix()!r})"
    if root is not None:
        try:
            inside = Path(cache).resolve().relative_to(Path(root).resolve())
        except ValueError:
            pass
        else:
            return f"str(PROJECT / {inside.as_posix()!r})"
    return repr(cache)


def _unsaved(record: dict) -> str:
    """For a run made with ``--dry-cache``: that the stage runs it executed saved nothing,
    so the artifacts above are only those it found cached (``""`` for any other run)."""
    from assay.export.full import unsaved_stage_runs

    count = unsaved_stage_runs(record)
    if not count:
        return ""
    return (
        f" The run used `--dry-cache`: the {count} stage run{'s' if count != 1 else ''} it "
        "executed saved nothing, so only the artifacts it found cached are here; the re-run "
        "below runs with `dry_cache=True` too (leave it out to cache what it computes)."
    )


def _used(artifacts: list[dict]) -> str:
    """ "The run used N artifacts.", each counted once: parameter sets that hash alike share
    their artifacts, which are listed once under each set's label."""
    used = len({a["key"] for a in artifacts})
    text = f"The run used {used} artifact{'s' if used != 1 else ''}."
    if used < len(artifacts):
        text += (" Parameter sets that hash alike share artifacts, so some are listed under "
                 f"more than one label ({len(artifacts)} labels below).")  # fmt: skip
    return text


def _label(artifact: dict) -> str:
    return f"{artifact['param_set'] or 'aggregate'} / {artifact['stage']} / {artifact['name']}"


def _labels(artifacts: list[dict]) -> list[str]:
    """Each artifact's label in ``ARTIFACTS`` and its heading: ``set / stage / output``,
    unique in the run. Two records of one parameter set (a ``make_copy()`` branch) or
    two aggregates may make one output of one stage twice; those labels get the start of
    the artifact's cache key (``p / total / total (key 1fba2ee3)``), which stays the same
    from one export of the run to the next; an artifact listed twice, a counter."""
    plain = [_label(a) for a in artifacts]
    shared = {label for label in plain if plain.count(label) > 1}
    labels: list[str] = []
    for artifact, label in zip(artifacts, plain):
        if label in shared:
            label = f"{label} (key {_key_start(artifact['key'])})"
        unique, number = label, 2
        while unique in labels:
            unique, number = f"{label} ({number})", number + 1
        labels.append(unique)
    return labels


def _key_start(key: str) -> str:
    """The first characters of a cache key's hash (``1fba2ee3`` of ``1fba2ee3...b85f.total``)."""
    digits = re.match(r"[0-9a-fA-F]+", key or "")
    return (digits.group(0) if digits else key or "?")[:8]


TAKEN_NAMES = frozenset(
    {"json", "os", "sys", "assay", "load", "manager", "store", "recorded", "again", "same",
     "find_project_root", *dir(builtins)}
)  # fmt: skip
"""Names an artifact's variable must not take: the notebook's own, and Python's builtins
that its cells call (``print``, ``len``)."""


def _variable(artifact: dict, taken: set[str]) -> str:
    """A Python name for the artifact's cell, made from its output and parameter-set names:
    readable (``r²`` in ``σ²=0.1`` gives ``r2_σ2_0_1``), a valid identifier that is no
    keyword, and not in ``taken`` (which it joins)."""
    base = _identifier(f"{artifact['name']}_{artifact['param_set'] or 'aggregate'}")
    name, number = base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name)
    return name


_LONGEST_VARIABLE = 60


def _identifier(text: str) -> str:
    """``text`` as a Python identifier: compatibility characters replaced by their plain
    forms (``²`` -> ``2``, ``ﬁ`` -> ``fi``, as Python itself reads names), lower case,
    every run of characters a name cannot hold made one ``_``; ``artifact`` if nothing
    usable is left, ``NAME_artifact`` if the result is a keyword."""
    plain = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(c if f"_{c}".isidentifier() else "_" for c in plain)
    name = re.sub(r"_+", "_", kept).strip("_")[:_LONGEST_VARIABLE].rstrip("_")
    if name and not name[0].isidentifier():  # a digit (or a combining mark) first
        name = f"a_{name}"
    name = unicodedata.normalize("NFKC", name)
    if keyword.iskeyword(name):
        return f"{name}_artifact"
    return name if name.isidentifier() else "artifact"


def _checksum_argument(artifact: dict) -> str:
    """``, checksum='...'`` for an artifact's load cell: the run's bytes, not those a
    later run put under the same key; ``""`` when the run recorded no checksum."""
    checksum = artifact.get("checksum")
    return f", checksum={checksum!r}" if isinstance(checksum, str) and checksum else ""


def _literal(value: Any) -> str:
    """Python source for JSON-like data (via JSON, so it holds no code)."""
    return f"json.loads({json.dumps(json.dumps(value, default=str))})"
