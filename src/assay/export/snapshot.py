"""What goes into an export: the code snapshot and the pinned environment.

The **code snapshot** is the project's code as it is now, meant to be run
elsewhere. In a git repository it holds what git would give a colleague plus
your uncommitted work: every tracked file and every untracked file that git
does not ignore (``git ls-files --cached --others --exclude-standard``).
Outside git, it holds the project's source-like files (``.py``, ``.toml``,
``.cfg``, ``.ini``, ``.txt``, ``.md``, ``.yml``/``.yaml``, ``.json``,
``.ipynb``) outside ``data/``.

Always left out, so an export never carries secrets or results by accident:

- anything git ignores (ask for some with ``include`` patterns, e.g.
  ``--store-full-include 'data/raw/*.csv'``);
- files that look like secrets: ``.env`` and ``.env.*``, private keys
  (``*.pem``, ``*.key``, ``id_rsa`` ...), ``.netrc``, ``.pypirc``,
  ``credentials.json``, ``secrets.*`` and the contents of ``.ssh/``,
  ``.aws/``, ``.gnupg/`` — even when they are tracked (``include`` them by
  name if you really mean to);
- symbolic links to files outside the project's git repository (outside
  git: the project), of which a checkout holds only the link, or to files
  left out;
- assay's own outputs (the cache, exported runs, reports, logs, the run
  store; also exports, Docker contexts and reproductions written elsewhere in
  the project), ``.git`` and virtual environments.

Every file left out for being a secret or ignored is named in the export's
``run.json`` (``export.code.left_out``), so you can see what is missing.

A run exported after its code changed gets its own code back where git can
give it (:func:`rebuild_run_code`): the files git tracked in the run's commit,
with the run's recorded uncommitted changes applied, and the files git did not
track then, as they are now. The same rules then choose what is copied.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import AssayError

__all__ = [
    "SECRET_PATTERNS",
    "RunCode",
    "Snapshot",
    "environment_yml",
    "plan_snapshot",
    "rebuild_run_code",
    "requirements_txt",
    "shown",
    "write_snapshot",
]

SECRET_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".pypirc",
    ".npmrc",
    ".git-credentials",
    ".htpasswd",
    "credentials.json",
    "credentials.y*ml",
    "secrets.*",
    "service-account*.json",
)
"""File names (matched against the base name) that are never copied unless included."""

SECRET_FOLDERS = (".ssh", ".aws", ".gnupg", ".azure", ".kube")
"""Folders whose contents are never copied unless included."""

SOURCE_SUFFIXES = (
    ".py", ".pyi", ".toml", ".cfg", ".ini", ".txt", ".md", ".rst",
    ".yml", ".yaml", ".json", ".ipynb", ".sh",
)  # fmt: skip
"""What a snapshot holds outside git."""

SUBMODULE = "a git submodule or repository of its own: its code is not in the snapshot"
"""Why ``left_out`` names a folder whose code the snapshot does not hold."""

_NEVER = ("__pycache__", ".git", ".hg", ".svn", ".venv", "venv", "node_modules", ".tox", ".nox")
_NEVER_SUFFIXES = (".pyc", ".pyo")


@dataclass
class Snapshot:
    """The files chosen for a code snapshot (paths relative to the project root)."""

    source: str
    """``"git"`` (tracked + untracked-but-not-ignored files) or ``"folder"`` (no git)."""
    files: list[str] = field(default_factory=list)
    """The files to copy, as POSIX paths relative to the project root."""
    left_out: list[dict[str, str]] = field(default_factory=list)
    """``{"path", "reason"}`` for every file left out as a secret or as ignored by git."""
    origin: dict[str, Path] = field(default_factory=dict)
    """Files copied from another folder than the project's (a run's own code, rebuilt by
    :func:`rebuild_run_code`): path → that folder."""


@dataclass
class RunCode:
    """A run's own code, rebuilt from git by :func:`rebuild_run_code`."""

    folder: Path
    """The project's folder in the rebuilt tree: the files git tracked in the run's
    commit, with the run's recorded uncommitted changes applied."""
    untracked: list[str]
    """What git did not track at the run, relative to the project (a folder ends in
    ``/``): taken from the project as it is now, since its content was not recorded."""
    submodules: list[str] = field(default_factory=list)
    """The git submodules in the project's folder at the run's commit, relative to the
    project: their code is not in the rebuilt tree."""
    binary: list[str] = field(default_factory=list)
    """Binary files the run had changed (or added), relative to the project: the
    recorded diff says only that they differ, so they are taken from the project as it
    is now."""


def plan_snapshot(
    root: str | os.PathLike, config: Any, include: list[str] = (), run: RunCode | None = None
) -> Snapshot:
    """Choose the files of a code snapshot of the project at ``root`` (see the module docs).

    ``include`` holds glob patterns (matched against the relative path and
    the base name); a file matching one is taken even if git ignores it or it
    looks like a secret. With ``run``, the files git tracks come from the
    run's rebuilt code instead of the project as it is now.
    """
    root = Path(root)
    outputs = _output_prefixes(root, config)
    listed = _git_files(root)
    if listed is None:
        snapshot = Snapshot("folder")
        candidates = _walk(root, outputs + ("data/",))
        if include:  # any file, also in data/, that a pattern asks for
            candidates += [p for p in _walk(root, outputs, suffixes=None) if _matches(p, include)]
    else:
        snapshot = Snapshot("git")
        candidates = listed
        if run is not None:
            candidates = _run_files(root, run, listed, snapshot.origin)
            for path in run.submodules:
                snapshot.left_out.append({"path": shown(path), "reason": SUBMODULE})
        if include:
            ignored = _git_ls(root, "--others", "--ignored", "--exclude-standard") or []
            candidates += [p for p in ignored if _matches(p, include)]
        for path in (
            _git_ls(root, "--others", "--ignored", "--exclude-standard", "--directory") or []
        ):
            if not path.startswith(outputs) and not _never(path):
                snapshot.left_out.append({"path": shown(path), "reason": "ignored by git"})
    seen = set()
    venvs: dict[str, bool] = {}
    written: dict[str, str | None] = {}
    repository = _repository_top(root) if listed is not None else root  # what git holds
    for path in candidates:
        if path in seen or path.startswith(outputs) or _never(path):
            continue
        seen.add(path)
        if _in_virtualenv(root, path, venvs):  # one git does not ignore, named otherwise
            continue
        held = _in_assay_output(snapshot.origin.get(path, root), path, written)
        if held is not None and not _matches(path, include):
            entry = {"path": shown(held[0]), "reason": held[1]}
            if entry not in snapshot.left_out:
                snapshot.left_out.append(entry)
            continue
        full = snapshot.origin.get(path, root) / path
        if not full.is_file():  # deleted but still tracked, or a link to a folder
            folder = {"path": shown(path.rstrip("/") + "/"), "reason": SUBMODULE}
            if full.is_dir() and not full.is_symlink() and folder not in snapshot.left_out:
                # git lists a submodule (or a repository inside this one) as one entry
                snapshot.left_out.append(folder)
            continue
        if _secret(path) and not _matches(path, include):
            snapshot.left_out.append({"path": shown(path), "reason": "may hold secrets"})
            continue
        origin = snapshot.origin.get(path)  # a run's rebuilt code, or the project
        within = origin if origin is not None else repository
        link = _link_problem(full, within, origin or root, outputs)
        if link and not _matches(path, include):
            snapshot.left_out.append({"path": shown(path), "reason": link})
            continue
        snapshot.files.append(path)
    snapshot.files.sort()
    return snapshot


def write_snapshot(root: str | os.PathLike, snapshot: Snapshot, destination: Path) -> int:
    """Copy the snapshot's files into ``destination``; return the bytes copied. The
    project's settings files are copied without ``cache_options`` (credentials for a
    cache at a URL), which the docs promise never to write anywhere."""
    root = Path(root)
    total = 0
    for path in snapshot.files:
        target = destination / path
        target.parent.mkdir(parents=True, exist_ok=True)
        source = snapshot.origin.get(path, root) / path
        shutil.copy2(source, target)
        if target.name in SETTINGS_FILES:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                text = source.read_text(encoding="utf-8")
                kept = without_cache_options(text)
                if kept != text:
                    target.write_text(kept, encoding="utf-8")
        total += target.stat().st_size
    return total


SETTINGS_FILES = ("assay.toml", "pyproject.toml")
"""Files that may hold assay's settings, ``cache_options`` among them."""

_LEFT_OUT = "left out by assay: it may hold credentials"
_HEADER = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+\s*(#.*)?$")
_INLINE = re.compile(r"^(\s*(?:tool\.assay\.)?cache_options\s*=\s*)\S.*$")
_DOTTED = re.compile(r"^(\s*(?:tool\.assay\.)?cache_options\.[^=]+=\s*)\S.*$")


def without_cache_options(text: str) -> str:
    """TOML ``text`` with the values of ``cache_options`` replaced (an inline table,
    dotted keys, or a ``[cache_options]`` / ``[tool.assay.cache_options]`` table):
    they may hold a cache's credentials (``secret = ...``)."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        header = _HEADER.match(line)
        if header:
            name = header.group(1)
            inside = name in ("cache_options", "tool.assay.cache_options") or name.startswith(
                ("cache_options.", "tool.assay.cache_options.")
            )
            out.append(line)
            continue
        if inside and line.strip() and not line.lstrip().startswith("#"):
            out.append(f"# ({_LEFT_OUT})\n")
            continue
        inline, dotted = _INLINE.match(line), _DOTTED.match(line)
        if inline:
            line = f"{inline.group(1)}{{}}  # {_LEFT_OUT}\n"
        elif dotted:
            line = f'{dotted.group(1)}""  # {_LEFT_OUT}\n'
        out.append(line)
    return "".join(out)


def rebuild_run_code(root: str | os.PathLike, git: dict, scratch: Path) -> RunCode:
    """Rebuild in ``scratch`` the code a run had, from its recorded git state ``git``
    (``provenance.git`` of its record) and the repository holding ``root``.

    The files the run's commit holds in the project's folder are written out through a
    temporary index of its own in ``scratch`` (``git read-tree``, ``git checkout-index``:
    the repository, its index and its working tree are left as they are), and the run's
    recorded diff of uncommitted changes to them applied with ``git apply`` (changes
    elsewhere in the repository are not looked at). Raises
    :class:`~assay.errors.AssayError` saying why when that cannot be done: no commit
    recorded, the commit is not in the repository (a shallow clone, history rewritten),
    the diff was cut short, holds bytes it could not keep, or does not apply.
    """
    from assay.provenance import DIFF_LIMIT

    commit = git.get("commit")
    if not commit:
        raise AssayError("the run recorded no git commit")
    if git.get("diff_truncated"):
        raise AssayError(
            f"its recorded diff of uncommitted changes was cut at {DIFF_LIMIT:,} characters"
        )
    found = _git_run(Path(root), "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise AssayError(f"{root} is no longer in a git repository")
    top = Path(found.stdout.decode("utf-8", "surrogateescape").strip())
    part = _relative(top, Path(root))
    if part is None:
        raise AssayError(f"{root} is not inside the repository {top}")
    if _git_run(top, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise AssayError(
            f"its commit {commit} is not in the repository {top} (a shallow clone, or "
            "history rewritten since)"
        )
    inside = "" if part == "." else part + "/"
    if (git.get("diff") or "").startswith("(the diff could not be recorded"):
        raise AssayError(f"its uncommitted changes were not recorded: {git['diff']}")
    diff = _diff_inside(git.get("diff") or "", inside)
    diff, binary, deleted = _without_binary_changes(diff)
    if "\ufffd" in diff:
        raise AssayError(
            "its recorded diff of uncommitted changes held bytes that are not UTF-8 text, "
            "which the record could keep only as U+FFFD: the changed files cannot be "
            "rebuilt exactly"
        )
    tree = scratch / "tree"
    tree.mkdir(parents=True)
    index = {"GIT_INDEX_FILE": str((scratch / "index").resolve())}  # not the repository's
    read = _git_run(top, "read-tree", commit, env=index)
    if read.returncode != 0:
        raise AssayError(f"git read-tree {commit} failed: {_first_line(read.stderr)}")
    listed = _git_run(top, "--literal-pathspecs", "ls-files", "-s", "-z", "--", part, env=index)
    if listed.returncode != 0:
        raise AssayError(f"git ls-files of commit {commit} failed: {_first_line(listed.stderr)}")
    files, submodules = [], []
    for entry in listed.stdout.split(b"\0"):
        if entry:  # MODE OBJECT STAGE\tPATH
            mode, path = entry.split(b" ", 1)[0], entry.split(b"\t", 1)[1]
            (submodules if mode == b"160000" else files).append(path)
    written = _git_run(
        top,
        "checkout-index",
        f"--prefix={tree.resolve()}/",
        "--stdin",
        "-z",
        env=index,
        input=b"".join(path + b"\0" for path in files),
    )
    if written.returncode != 0:
        raise AssayError(
            f"the files of commit {commit} could not be written to {tree}: "
            f"{_first_line(written.stderr)}"
        )
    for path in submodules:  # an empty folder, as a checkout without them has
        (tree / os.fsdecode(path)).mkdir(parents=True, exist_ok=True)
    if "diff --git " in diff:  # not only a note (all changes to secrets, cut out)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env["GIT_CEILING_DIRECTORIES"] = str(scratch.resolve())  # no repository around
        try:
            applied = subprocess.run(
                ["git", "apply", "--whitespace=nowarn", "-"],
                cwd=tree,
                input=diff.encode("utf-8", "surrogateescape"),
                capture_output=True,
                timeout=300,
                env=env,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            applied = subprocess.CompletedProcess([], 127, b"", str(exc).encode())
        if applied.returncode != 0:
            raise AssayError(
                f"its recorded uncommitted changes do not apply to commit {commit}: "
                f"{_first_line(applied.stderr)}"
            )
    for path in binary + deleted:  # the commit's version is not the run's
        with contextlib.suppress(OSError):
            (tree / path).unlink()
    folder = tree / part if part != "." else tree
    if not folder.is_dir():
        raise AssayError(f"the project's folder {part} is not in commit {commit}")
    untracked = [p[len(inside) :] for p in git.get("untracked") or () if p.startswith(inside)]
    modules = [os.fsdecode(p)[len(inside) :] + "/" for p in submodules]
    changed = [p[len(inside) :] for p in binary if p.startswith(inside)]
    return RunCode(folder, untracked, modules, changed)


_NO_CONTENT = re.compile(r"(?m)^Binary files .* differ$")
_DELETED = re.compile(r"(?m)^deleted file mode ")


def _without_binary_changes(diff: str) -> tuple[str, list[str], list[str]]:
    """``diff`` without the sections of binary files whose content it does not hold
    (``Binary files a/X and b/X differ``: ``git apply`` refuses the whole diff for one),
    and those files, repository-relative: ``(the rest, changed or added, deleted)``."""
    from assay.provenance import _section_paths

    kept, changed, deleted = [], [], []
    for section in re.split(r"(?m)^(?=diff --git )", diff):
        header = section.split("\n@@", 1)[0]
        if not (section.startswith("diff --git ") and _NO_CONTENT.search(header)):
            kept.append(section)
            continue
        paths = sorted(_section_paths(section) or ())
        (deleted if _DELETED.search(header) else changed).extend(paths)
    return "".join(kept), changed, deleted


def _diff_inside(diff: str, inside: str) -> str:
    """The sections of ``diff`` (repository-relative paths) that change files in the
    folder ``inside`` (``""``: all of them). Raises :class:`AssayError` for a section
    whose file names cannot be read (a run recorded with git's ``diff.noprefix``
    configuration, before assay asked for its own prefixes)."""
    from assay.provenance import _section_paths

    kept = []
    for section in re.split(r"(?m)^(?=diff --git )", diff):
        if not section.startswith("diff --git "):
            continue
        paths = _section_paths(section)
        if paths is None:
            raise AssayError(
                "its recorded diff of uncommitted changes does not say which files it "
                f"changes in a way assay can read (`{section.splitlines()[0]}`: recorded "
                "with a git configuration such as diff.noprefix)"
            )
        if not inside or any(p.startswith(inside) for p in paths):
            kept.append(section)
    return "".join(kept)


def requirements_txt(provenance: dict | None, title: str) -> str:
    """A pinned ``requirements.txt`` (``name==version``) of the packages a run recorded.

    assay itself, pip and packages installed in editable mode (your own
    projects, installed with ``pip install -e``) are left out, each named in
    a comment. Without a recorded environment (a run from before assay
    recorded one) the packages installed now are used, and the file says so.
    """
    from assay.provenance import installed_packages

    lines = [f"# {title}", "# Pinned by assay: install with `pip install -r requirements.txt`."]
    if provenance and provenance.get("packages"):
        packages, editable = provenance["packages"], provenance.get("editable") or {}
    else:
        packages, editable = installed_packages()
        lines.append("# The run recorded no packages: these are the versions installed now.")
    left = [name for name in ("assay", "pip") if name in packages]
    if left:
        lines.append(f"# Left out: {', '.join(left)} (installed separately).")
    for name, location in sorted(editable.items()):
        if name != "assay":
            lines.append(f"# Left out, installed in editable mode: {name} {packages.get(name, '')}"
                         f" from {location}")  # fmt: skip
    for name, version in sorted(packages.items()):
        if name in ("assay", "pip") or name in editable:
            continue
        lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def environment_yml(provenance: dict | None, timeout_s: float = 120.0) -> str | None:
    """An ``environment.yml`` for a run under conda, or ``None`` if it had no conda env.

    When the run's environment is the active one and ``conda`` is installed,
    ``conda env export`` writes it; otherwise it is made from what the run
    recorded (conda packages, then the other Python packages under ``pip:``).
    """
    conda = (provenance or {}).get("conda")
    if not conda:
        return None
    executable = os.environ.get("CONDA_EXE") or shutil.which("conda")
    prefix = conda.get("prefix")
    if executable and prefix and os.environ.get("CONDA_PREFIX") == prefix:
        try:
            proc = subprocess.run(
                [executable, "env", "export", "--prefix", prefix],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                stdin=subprocess.DEVNULL,
            )
            if proc.returncode == 0 and proc.stdout.strip():
                return proc.stdout.replace(f"prefix: {prefix}\n", "")
        except (OSError, subprocess.SubprocessError):
            pass
    conda_packages = conda.get("packages") or {}
    lines = [f"name: {conda.get('name') or 'assay-run'}", "dependencies:"]
    lines += [f"  - {name}={version}" for name, version in sorted(conda_packages.items())]
    pip_only = {
        name: version
        for name, version in (provenance.get("packages") or {}).items()
        if name not in conda_packages and name not in ("assay", "pip")
        and name not in (provenance.get("editable") or {})
    }  # fmt: skip
    if pip_only:
        lines += ["  - pip", "  - pip:"]
        lines += [f"    - {name}=={version}" for name, version in sorted(pip_only.items())]
    return "\n".join(lines) + "\n"


# -- helpers -------------------------------------------------------------------------------


def _output_prefixes(root: Path, config: Any) -> tuple[str, ...]:
    """assay's own outputs as root-relative prefixes (``"data/cache/"``, ``"assay.db"``)."""
    prefixes = []
    for name in ("cache_dir", "runs_dir", "reports_dir", "logs_dir"):
        relative = _relative(root, Path(getattr(config, name)))
        if relative:
            prefixes.append(relative + "/")
    store = _relative(root, Path(config.store_path))
    if store:
        prefixes.append(store)  # also assay.db-wal, assay.db-shm
    return tuple(prefixes)


def _relative(root: Path, path: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return None


def _run_files(root: Path, run: RunCode, listed: list[str], origin: dict[str, Path]) -> list:
    """The files of a run's code: those of its rebuilt tree (noted in ``origin``), then
    those of ``listed`` (the project's now) that git did not track at the run."""
    files = []
    for folder, _dirs, names in os.walk(run.folder):
        relative = Path(folder).relative_to(run.folder).as_posix()
        prefix = "" if relative == "." else relative + "/"
        files += [prefix + name for name in names]
    origin.update(dict.fromkeys(files, run.folder))
    folders = tuple(p for p in run.untracked if p.endswith("/"))
    then = set(run.untracked)  # as recorded: a name that is not UTF-8 with U+FFFD (see shown)
    binary = set(run.binary)  # changed at the run, in ways the record does not hold
    return files + [
        p
        for p in listed
        if p not in origin and (shown(p) in then or shown(p).startswith(folders) or p in binary)
    ]


def _git_run(
    root: Path, *args: str, env: dict[str, str] | None = None, input: bytes | None = None
) -> subprocess.CompletedProcess:
    """``git -C root ARGS`` (with ``env`` added to the environment, ``input`` on its
    standard input); its output as bytes. A git that cannot be run fails (127)."""
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            timeout=300,
            input=input if input is not None else b"",
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", **(env or {})},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return subprocess.CompletedProcess(args, 127, b"", str(exc).encode())


def _first_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else "no message"


def _git_files(root: Path) -> list[str] | None:
    """Tracked and untracked-not-ignored files under ``root``, or ``None`` outside git."""
    return _git_ls(root, "--cached", "--others", "--exclude-standard")


def _git_ls(root: Path, *args: str) -> list[str] | None:
    if shutil.which("git") is None:
        return None
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", *args],
            capture_output=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    # The names as the file system has them (os.fsdecode): a name that is not UTF-8
    # (Latin-1, from an older system) decoded with U+FFFD names no file, and was dropped.
    return [os.fsdecode(p) for p in proc.stdout.split(b"\0") if p]


def _walk(
    root: Path, excluded: tuple[str, ...], suffixes: tuple[str, ...] | None = SOURCE_SUFFIXES
) -> list[str]:
    """The files under ``root`` (POSIX paths relative to it) ending in one of ``suffixes``
    (``None``: any), outside hidden folders, virtual environments and ``excluded``."""
    found = []
    for folder, dirs, files in os.walk(root):
        relative = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _NEVER
            and not (Path(folder, d) / "pyvenv.cfg").exists()
            and not (prefix + d + "/").startswith(excluded)
        )
        for name in sorted(files):
            wanted = suffixes is None or name.endswith(suffixes)
            if wanted and not (prefix + name).startswith(excluded):
                found.append(prefix + name)
    return found


def _in_assay_output(root: Path, path: str, known: dict[str, str | None]) -> tuple | None:
    """``(folder/, what it is)`` for the folder on ``path`` that assay wrote outside its
    usual places (``assay export full -o exports/run7``, ``export docker -o``, ``assay
    reproduce --workdir``): its artifacts and copied code are no part of the project's
    code. ``None`` if there is none; ``known`` remembers the folders looked at."""
    parts = path.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        folder = "/".join(parts[:depth])
        if folder not in known:
            known[folder] = _written_by_assay(root / folder)
        if known[folder]:
            return folder + "/", known[folder]
    return None


def _written_by_assay(folder: Path) -> str | None:
    """What ``folder`` is, if assay wrote it: an export, a Docker build context, or the
    working folder of a reproduction; ``None`` otherwise."""
    from assay.export.destination import is_build_context, is_full_export
    from assay.export.reproduce import MARKER

    if (folder / "run.json").is_file() and is_full_export(folder):
        return "an exported run (assay export full, --store-full), not code"
    if (folder / "Dockerfile").is_file() and is_build_context(folder):
        return "a Docker build context (assay export docker), not code"
    if (folder / MARKER).is_file():
        return "the working folder of an assay reproduce, not code"
    return None


def _in_virtualenv(root: Path, path: str, known: dict[str, bool]) -> bool:
    """Whether a folder on ``path`` holds a ``pyvenv.cfg`` (a virtual environment, whatever
    its name); ``known`` remembers the folders looked at."""
    parts = path.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        folder = "/".join(parts[:depth])
        if folder not in known:
            known[folder] = (root / folder / "pyvenv.cfg").is_file()
        if known[folder]:
            return True
    return False


def shown(path: str) -> str:
    """``path`` as text that can be written anywhere (JSON, a README, the run store): a
    file name that is not UTF-8, decoded from the file system with surrogate escapes,
    gets U+FFFD for each byte that is not, as in the git state a run records."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _link_problem(full: Path, within: Path, root: Path, outputs: tuple[str, ...]) -> str | None:
    """Why ``full``, a symbolic link of the project ``root``, is not copied: its copy
    would hold the file it leads to, which lies outside ``within`` (the git repository
    holding the project, or the project outside git: a checkout holds only the link, as
    for ``settings.yaml`` → ``~/.aws/credentials``), looks like a secret, or is one of
    assay's outputs. ``None`` for a file that is no link, or leads to one that is code."""
    if not full.is_symlink():
        return None
    try:
        resolved = full.resolve()
        target = resolved.relative_to(within.resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):
        where = "the project's git repository" if within != root else "the project"
        return f"a link to a file outside {where} (a checkout holds only the link)"
    if _secret(target):
        return f"a link to {shown(target)}, which may hold secrets"
    mine = _relative(root, resolved) or ""
    if (mine and mine.startswith(outputs)) or _never(target):
        return f"a link to {shown(target)}, which the snapshot does not take"
    return None


def _repository_top(root: Path) -> Path:
    """The top folder of the git repository holding ``root`` (``root`` if git cannot say)."""
    found = _git_run(root, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        return root
    return Path(os.fsdecode(found.stdout.strip()))


def _never(path: str) -> bool:
    parts = path.rstrip("/").split("/")
    return any(p in _NEVER for p in parts) or path.endswith(_NEVER_SUFFIXES)


def _secret(path: str) -> bool:
    parts = path.split("/")
    if any(p in SECRET_FOLDERS for p in parts[:-1]):
        return True
    return any(fnmatch.fnmatch(parts[-1], pattern) for pattern in SECRET_PATTERNS)


def _matches(path: str, patterns: list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in patterns)
