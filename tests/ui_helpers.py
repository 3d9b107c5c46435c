"""The dashboard tests' project with real runs, and the dashboard as a real server process.

:func:`make_project` copies ``tests/resources/projects/dashboard`` (the
``sweep`` experiment: JSON, CSV, ``.npy``, pickle and PNG artifacts, and
metrics with and without steps), makes it a git repository and runs it:

1. ``-p grid`` (four parameter sets), on a clean commit;
2. ``-p grid --set epochs=6`` with notes, after an uncommitted change (dirty);
3. ``-p evil``: parameter sets named ``<script>...`` and ``"><img onerror=...>``.

:class:`Server` starts ``python -m assay ui`` in a project, as a researcher
would, and reads the URL it prints.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import assay
from conftest import copy_project, forget_project_modules
from git_helpers import GITIGNORE, init_repo

SECRET = "TOP-SECRET-CONTENT-outside-the-project"
"""Written to a file beside (outside) the project: no response may ever contain it."""


def make_project(parent: Path) -> Path:
    """A copy of the dashboard project with the three runs above; a secret file beside it."""
    saved = list(sys.path)
    try:
        root = copy_project("dashboard", parent)
        (parent / "secret.txt").write_text(SECRET)
        init_repo(root, GITIGNORE)
        assay.run_experiment(
            "sweep", ["grid"], project_root=root, command="assay run sweep -p grid"
        )
        with open(root / "assay.toml", "a") as handle:
            handle.write("# an uncommitted change\n")
        assay.run_experiment(
            "sweep",
            ["grid"],
            project_root=root,
            overrides=["epochs=6"],
            notes="longer training",
            command="assay run sweep -p grid --set epochs=6",
        )
        assay.run_experiment(
            "sweep", ["evil"], project_root=root, command="assay run sweep -p evil"
        )
    finally:
        sys.path[:] = saved
        forget_project_modules()
    return root


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1", COLUMNS="200")
    return env


class Server:
    """``python -m assay ui --project ROOT [ARGS]`` running in the background."""

    def __init__(self, root: Path, *args: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "assay", "ui", "--project", str(root), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        self.lines: list[str] = []
        self.url = self._read_url()

    def _read_url(self) -> str:
        deadline = time.time() + 30
        assert self.process.stdout is not None
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            found = re.search(r"(http://\S+)", line)
            if found:
                return found.group(1)
        self.stop()
        raise AssertionError(
            "assay ui printed no URL:\n" + "\n".join(self.lines) + "\n" + self._stderr()
        )

    @property
    def base(self) -> str:
        """The URL without its query (the token)."""
        return self.url.split("?", 1)[0].rstrip("/")

    def _stderr(self) -> str:
        try:
            return self.process.stderr.read() if self.process.stderr else ""
        except ValueError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def latest_run_id(root: Path) -> str:
    from assay.store import RunStore

    with RunStore(root / "assay.db") as store:
        return store.get_run("latest").id
