"""What a run was made with: the code's git state, the installed packages, conda.

assay captures this once per run, right after the run is opened in the run
store, and keeps it there and in the run's metadata file (``logs/RUN_ID.json``)::

    from assay.provenance import capture

    prov = capture(project_root)
    prov.git.commit         # "3f1c9a0e..." (all 40 hex digits), or None
    prov.git.dirty          # True if the working tree differs from that commit
    prov.git.diff           # the uncommitted changes, as `git diff HEAD` prints them
    prov.packages["numpy"]  # "1.26.4"

Nothing here can fail a run: without git, outside a repository, on a detached
HEAD or in a repository without commits, the git part says so in
``git.error`` / ``git.detached`` and the rest is recorded as usual.

What counts as *dirty*: a tracked file changed (staged or not), or a file git
does not know and does not ignore (it would be missing from a checkout of the
commit). assay's own outputs (the cache, reports, logs, the run store) never
count. Such untracked files are listed in ``git.untracked``; the diff covers
tracked files only, and never holds the changes to files that look like
secrets (``.env``, ``*.pem``, ... see :mod:`assay.export.snapshot`): those are
cut out before anything is stored, and a line at its end names the files.

The cost is a few milliseconds: two or three ``git`` processes (none outside a
repository) and a listing of the ``*.dist-info`` folders on ``sys.path`` (no
``pip freeze``). See ``docs/provenance.md`` for the measured figure.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.distributions import editable_location, metadata_folders, name_version

__all__ = [
    "DIFF_LIMIT",
    "CondaInfo",
    "GitInfo",
    "Provenance",
    "capture",
    "capture_git",
    "conda_info",
    "installed_packages",
    "without_secrets",
]

DIFF_LIMIT = 2_000_000
"""Characters of ``git diff`` kept; a longer diff is cut and marked ``diff_truncated``."""

DIFF_OPTIONS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-relative",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)
"""How the diff is asked for, whatever the user's git configuration says (``diff.noprefix``,
``diff.mnemonicPrefix``, ``diff.relative``, ``diff.external``, ``color.diff`` ...): every
path relative to the repository's top, after ``a/`` and ``b/``, as ``git apply`` and the
cutting of secrets expect."""

GIT_TIMEOUT_S = 20.0
"""How long one ``git`` command may take before provenance gives up on git."""

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_NEVER_DIRTY = re.compile(r"(^|/)(__pycache__|\.ipynb_checkpoints)(/|$)|\.py[co]$")
"""Untracked files Python and Jupyter make by themselves: never a reason to call a tree dirty."""


@dataclass
class GitInfo:
    """The state of the project's git working tree when a run started."""

    commit: str | None = None
    """The full commit id of ``HEAD`` (40 hex digits, never shortened), or ``None``."""
    branch: str | None = None
    """The checked-out branch, or ``None`` on a detached HEAD or outside git."""
    detached: bool = False
    """Whether ``HEAD`` pointed at a commit rather than a branch."""
    dirty: bool = False
    """Whether the tree differs from ``commit`` (changed tracked files or untracked files)."""
    modified: list[str] = field(default_factory=list)
    """Tracked files with uncommitted changes, relative to the repository root."""
    untracked: list[str] = field(default_factory=list)
    """Files (or whole folders, ending in ``/``) git neither tracks nor ignores."""
    diff: str = ""
    """``git diff HEAD``: every uncommitted change to tracked files, but those to files
    that look like secrets (see :func:`without_secrets`)."""
    diff_truncated: bool = False
    """Whether ``diff`` was cut at :data:`DIFF_LIMIT` characters."""
    remote: str | None = None
    """The ``origin`` remote's URL (any user name or token in it removed), if any."""
    root: str | None = None
    """The repository's top folder."""
    error: str | None = None
    """Why the git state is unknown: no git, not a repository, ... (``None`` if known)."""


@dataclass
class CondaInfo:
    """The active conda environment (from ``CONDA_PREFIX`` / ``CONDA_DEFAULT_ENV``)."""

    name: str | None = None
    """The environment's name, e.g. ``"base"`` or ``"study"``."""
    prefix: str | None = None
    """Its folder."""
    packages: dict[str, str] = field(default_factory=dict)
    """Conda packages installed in it (from ``conda-meta/``), name → version."""


@dataclass
class Provenance:
    """Everything a run records about its code and environment (beyond :class:`RunInfo`)."""

    git: GitInfo = field(default_factory=GitInfo)
    """The git state of the project."""
    packages: dict[str, str] = field(default_factory=dict)
    """Installed Python distributions, name → version, sorted by name."""
    editable: dict[str, str] = field(default_factory=dict)
    """Distributions installed in editable / development mode, name → source location."""
    conda: CondaInfo | None = None
    """The active conda environment, or ``None``."""
    python_executable: str = ""
    """The Python interpreter that ran the run."""
    python_version: str = ""
    """Its full version, e.g. ``"3.11.7"``."""
    capture_s: float = 0.0
    """How long capturing all this took, in seconds."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (see :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Provenance:
        """Rebuild a record from :meth:`to_dict` output; unknown keys are ignored."""
        data = dict(data or {})
        git = _known(GitInfo, data.get("git") or {})
        conda = _known(CondaInfo, data["conda"]) if data.get("conda") else None
        rest = {k: v for k, v in data.items() if k not in ("git", "conda")}
        return _known(cls, {**rest, "git": git, "conda": conda})


def capture(project_root: str | os.PathLike | None = None, ignore: list[str] = ()) -> Provenance:
    """Capture the provenance of a run started now in ``project_root``.

    ``ignore`` lists folders and files (relative to the project root, or
    absolute) that never make the tree dirty, such as assay's own cache and
    run store. Never raises for a git problem; the problem is kept in
    ``git.error``.
    """
    start = time.perf_counter()
    root = Path(project_root or Path.cwd())
    packages, editable = installed_packages()
    result = Provenance(
        git=capture_git(root, ignore=ignore),
        packages=packages,
        editable=editable,
        conda=conda_info(),
        python_executable=sys.executable,
        python_version=".".join(map(str, sys.version_info[:3])),
    )
    result.capture_s = round(time.perf_counter() - start, 6)
    return result


# -- git ---------------------------------------------------------------------------------


def capture_git(root: str | os.PathLike, ignore: list[str] = ()) -> GitInfo:
    """The git state of the working tree holding ``root`` (see :class:`GitInfo`)."""
    if shutil.which("git") is None:
        return GitInfo(error="git is not installed (no `git` on PATH)")
    root = Path(root)
    if not _may_be_in_a_repository(root):
        return GitInfo(error=f"{root} is not in a git repository")
    # Three independent questions, asked at once (each git process takes milliseconds).
    out, top, remote = _git(
        root,
        ["status", "--porcelain=v2", "-z", "--branch", "--untracked-files=normal"],
        ["rev-parse", "--show-toplevel"],
        ["remote", "get-url", "origin"],
    )
    if isinstance(out, _GitFailed):
        text = str(out)
        if "not a git repository" in text.lower():
            error = f"{root} is not in a git repository"
            if "parent directories" not in text:  # a .git file names a folder that is gone
                error += f" ({text})"
            return GitInfo(error=error)
        return GitInfo(error=text)
    info = GitInfo()
    entries = out.split("\0")
    for entry in entries:
        if entry.startswith("# branch.oid "):
            oid = entry.split(" ", 2)[2]
            info.commit = oid if _SHA.match(oid) else None
        elif entry.startswith("# branch.head "):
            head = entry.split(" ", 2)[2]
            info.detached = head == "(detached)"
            info.branch = None if info.detached else head
    info.root = None if isinstance(top, _GitFailed) else top.strip() or None
    info.remote = None if isinstance(remote, _GitFailed) else _without_credentials(remote.strip())
    skipped, folders = _ignored_prefixes(root, info.root, ignore)
    modified, untracked = _changed_paths(entries)
    info.modified = modified
    beside = [p for p in untracked if p in folders]
    if beside:  # git listed data/ whole for holding data/cache: what else is in it?
        untracked = [p for p in untracked if p not in folders]
        untracked += _untracked_beside_outputs(root, beside, skipped)
    info.untracked = [
        p for p in untracked if not _assay_output(p, skipped) and not _NEVER_DIRTY.search(p)
    ]
    info.dirty = bool(info.modified or info.untracked)
    if info.modified and info.commit:
        (diff,) = _git(root, ["diff", "HEAD", *DIFF_OPTIONS, "--"])
        if isinstance(diff, _GitFailed):
            diff = f"(the diff could not be recorded: {diff})"
        diff = without_secrets(diff)
        info.diff_truncated = len(diff) > DIFF_LIMIT
        info.diff = diff[:DIFF_LIMIT]
    elif info.modified:
        info.diff = "(the repository has no commit yet: every tracked file is new)"
    return info


def without_secrets(diff: str) -> str:
    """``diff`` without the sections (``diff --git ...``) of files that look like secrets
    (``.env``, ``*.pem``, ... see :data:`assay.export.snapshot.SECRET_PATTERNS`, and
    ``assay.toml`` or ``pyproject.toml`` where ``cache_options`` changed), nor
    those whose file names cannot be read (a diff made with other options: any may be a
    secret's); last lines name what was left out. The rest still applies with ``git apply``."""
    if "diff --git " not in diff:
        return diff
    from assay.export.snapshot import SETTINGS_FILES, _secret

    kept, cut, unread = [], set(), []
    for section in re.split(r"(?m)^(?=diff --git )", diff):
        paths = _section_paths(section)
        if paths is None:
            unread.append(section.split("\n", 1)[0])
            continue
        # A settings file whose change touches cache_options: credentials, perhaps.
        settings = "cache_options" in section
        secret = sorted(
            path
            for path in paths
            if _secret(path) or (settings and path.rpartition("/")[2] in SETTINGS_FILES)
        )
        if secret:
            cut.update(secret)
        else:
            kept.append(section)
    if not cut and not unread:
        return diff
    text = "".join(kept)
    if text and not text.endswith("\n"):
        text += "\n"
    if cut:
        names = ", ".join(sorted(cut))
        text += f"(changes to files that may hold secrets were left out: {names})\n"
    if unread:
        names = "; ".join(unread)
        text += f"(changes whose file names could not be read were left out: {names})\n"
    return text


def _section_paths(section: str) -> set[str] | None:
    """Every path a diff section's header may name (none for text that is no section),
    or ``None`` when a name in it cannot be read: no ``a/`` or ``b/`` prefix (a diff
    made with other options). ``diff --git a/X b/Y`` with spaces in the paths is
    ambiguous: each way to split it counts."""
    header = section.split("\n@@", 1)[0].splitlines()
    if not header or not header[0].startswith("diff --git "):
        return set()
    paths: set[str] = set()
    pair = header[0][len("diff --git ") :]
    if pair.startswith('"') or pair.endswith('"'):  # git quotes paths with unusual characters
        names = [_unquoted(q) for q in re.findall(r'"(?:[^"\\]|\\.)*"|\S+', pair)]
        if len(names) != 2 or names[0][:2] != "a/" or names[1][:2] != "b/":
            return None
        paths.update(name[2:] for name in names)
    else:
        splits = [m.start() for m in re.finditer(" b/", pair)]
        if not pair.startswith("a/") or not splits:
            return None
        for split in splits:
            paths.update((pair[2:split], pair[split + 3 :]))
    for line in header[1:]:
        if line.startswith(("--- ", "+++ ")):
            path = _unquoted(line[4:].rstrip("\t"))
            if path == "/dev/null":
                continue
            if path[:2] not in ("a/", "b/"):
                return None
            paths.add(path[2:])  # without a/ or b/
        elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
            paths.add(_unquoted(line.split(" ", 2)[2]))
    return paths


def _unquoted(text: str) -> str:
    """A path as git writes it: as is, or in double quotes with C escapes (octal bytes)."""
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        return text
    import ast

    try:
        return ast.literal_eval("b" + text).decode("utf-8", "surrogateescape")
    except (ValueError, SyntaxError):
        return text[1:-1]


def _may_be_in_a_repository(root: Path) -> bool:
    """Whether git could find a repository for ``root``: a ``.git`` (folder, or file
    of a worktree or submodule) in it or above it, or one named by ``GIT_DIR``.

    git looks the same way (from the folder with links resolved), so when this
    says no, its three processes would only say so too, in a few milliseconds
    of CPU taken from the run's first stages.
    """
    if os.environ.get("GIT_DIR"):
        return True
    folder = os.path.realpath(root)
    while True:
        if os.path.lexists(os.path.join(folder, ".git")):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent


def _changed_paths(entries: list[str]) -> tuple[list[str], list[str]]:
    """Tracked paths with changes, and untracked paths, from ``status --porcelain=v2 -z``."""
    modified, untracked = [], []
    skip_next = False
    for entry in entries:
        if skip_next:  # the original path of a rename or copy
            skip_next = False
            continue
        kind = entry[:2]
        if kind == "1 ":
            modified.append(entry.split(" ", 8)[8])
        elif kind == "2 ":
            modified.append(entry.split(" ", 9)[9])
            skip_next = True
        elif kind == "u ":
            modified.append(entry.split(" ", 10)[10])
        elif kind == "? ":
            untracked.append(entry[2:])
    return modified, untracked


def _ignored_prefixes(
    root: Path, top: str | None, ignore: list[str]
) -> tuple[tuple[str, ...], set[str]]:
    """Repository-relative paths that never make the tree dirty: prefixes (assay's
    outputs and all they hold), and folders git may list whole for holding them
    (``data/`` for ``data/cache``) but none holding the project (in a subfolder of
    its repository, ``proj/`` for ``proj/data/cache``): every file in it would count."""
    if top is None:
        return (), set()
    top_folder = Path(top).resolve()
    try:
        project = root.resolve().relative_to(top_folder).as_posix() + "/"
    except (ValueError, OSError):
        project = "./"
    project = "" if project == "./" else project
    prefixes, folders = [], set()
    for item in ignore:
        path = Path(item) if Path(item).is_absolute() else root / item
        try:
            relative = path.resolve().relative_to(top_folder).as_posix()
        except (ValueError, OSError):
            continue
        if relative in ("", "."):
            continue
        prefixes.append(relative)
        parts = relative.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth]) + "/"
            if not project.startswith(folder):
                folders.add(folder)
    return tuple(prefixes), folders


def _assay_output(path: str, outputs: tuple[str, ...]) -> bool:
    """Whether the repository-relative ``path`` is one of assay's ``outputs``, inside one,
    or SQLite's file beside the run store (``assay.db-wal``); ``logs_parser.py`` beside
    ``logs/`` is not."""
    path = path.rstrip("/")
    return any(
        path == output
        or path.startswith(output + "/")
        or path in (f"{output}-wal", f"{output}-shm", f"{output}-journal")
        for output in outputs
    )


def _untracked_beside_outputs(
    root: Path, folders: list[str], outputs: tuple[str, ...]
) -> list[str]:
    """The untracked files in ``folders`` (repository-relative, as ``git status`` listed them
    whole) but for assay's ``outputs`` in them, which git does not even look into: with no
    ``.gitignore`` for ``data/``, ``data/raw/input.csv`` beside ``data/cache`` is your work."""
    excludes = ["--exclude=/" + re.sub(r"([\\*?\[])", r"\\\1", path) for path in outputs]
    (out,) = _git(
        root,
        ["ls-files", "--others", "--exclude-standard", "--full-name", "-z", *excludes, "--"]
        + [f":(top,literal){folder}" for folder in folders],
    )
    if isinstance(out, _GitFailed):  # dirty in doubt: the folders as git listed them
        return folders
    listed = {}  # nothing in these folders is tracked: a subfolder holding no output is
    for path in out.split("\0"):  # untracked whole, and listed as one, as git does
        if path:
            listed[_untracked_folder(path, folders, outputs)] = None
    return list(listed)


def _untracked_folder(path: str, folders: list[str], outputs: tuple[str, ...]) -> str:
    """``path``, or its top folder below the one of ``folders`` holding it that holds no
    output: ``data/raw/`` for ``data/raw/a/b.csv`` (in ``data/``, beside ``data/cache``)."""
    folder = next((f for f in folders if path.startswith(f)), None)
    if folder is None:  # git spelled it otherwise (a filesystem that ignores case)
        return path
    parts = path[len(folder) :].split("/")
    for depth in range(1, len(parts)):
        below = folder + "/".join(parts[:depth])
        if not any(output.startswith(below + "/") for output in outputs):
            return below + "/"
    return path


class _GitFailed(Exception):
    pass


def _git(root: Path, *commands: list[str]) -> list[str | _GitFailed]:
    """Run git commands in ``root`` side by side; each one's output, or its failure."""
    import subprocess  # here: a project outside git never needs it (3 ms to import)

    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",  # `git status` must not take the index lock
        "LC_ALL": "C",
    }
    started: list[subprocess.Popen | _GitFailed] = []
    for args in commands:
        try:
            started.append(
                subprocess.Popen(
                    ["git", "-C", str(root), *args],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    env=env,
                )
            )
        except OSError as exc:
            started.append(_GitFailed(f"git could not be run: {exc}"))
    results: list[str | _GitFailed] = []
    for args, proc in zip(commands, started):
        if isinstance(proc, _GitFailed):
            results.append(proc)
            continue
        try:
            out, err = proc.communicate(timeout=GIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            results.append(_GitFailed(f"git {args[0]} took more than {GIT_TIMEOUT_S:.0f} s"))
            continue
        if proc.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            reason = lines[0] if lines else f"exit status {proc.returncode}"
            advice = [line.strip() for line in lines if "safe.directory" in line]
            if advice:  # a repository another user owns (a container, a shared disk)
                reason += f"; to let git read it: {advice[0]}"
            results.append(_GitFailed(f"git {args[0]} failed: {reason}"))
        else:
            results.append(out.decode("utf-8", "replace"))
    return results


def _without_credentials(url: str) -> str | None:
    """``https://user:token@host/repo`` → ``https://host/repo``."""
    if not url:
        return None
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url, flags=re.I)


# -- packages ----------------------------------------------------------------------------


def installed_packages() -> tuple[dict[str, str], dict[str, str]]:
    """``({name: version}, {editable name: source location})`` of the installed distributions.

    Reads the ``*.dist-info`` (and ``*.egg-info``) entries on ``sys.path`` as
    Python's import system sees them (the first one of a name wins): their
    names hold name and version, and ``direct_url.json`` says whether one is
    an editable install. That is far cheaper than ``pip freeze``, and than
    :mod:`importlib.metadata` (whose import alone costs a run tens of ms).
    """
    packages: dict[str, str] = {}
    editable: dict[str, str] = {}
    for path in metadata_folders():
        name, version = name_version(path)
        if not name or name in packages:
            continue
        packages[name] = version
        url = editable_location(path)
        if url is not None:
            editable[name] = url
    return dict(sorted(packages.items(), key=lambda kv: kv[0].lower())), editable


# -- conda -------------------------------------------------------------------------------


def conda_info() -> CondaInfo | None:
    """The active conda environment, or ``None`` outside conda (reads no subprocess)."""
    prefix = os.environ.get("CONDA_PREFIX")
    name = os.environ.get("CONDA_DEFAULT_ENV")
    if not prefix and not name:
        return None
    packages: dict[str, str] = {}
    meta = Path(prefix) / "conda-meta" if prefix else None
    if meta is not None and meta.is_dir():
        for entry in sorted(os.listdir(meta)):
            if entry.endswith(".json") and entry.count("-") >= 2:
                # NAME-VERSION-BUILD.json; NAME may itself contain dashes
                package, version, _build = entry[: -len(".json")].rsplit("-", 2)
                packages[package] = version
    return CondaInfo(
        name=name or (Path(prefix).name if prefix else None), prefix=prefix, packages=packages
    )


def _known(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
