"""Real git repositories for provenance tests: init, commit, and read back with git itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

IDENTITY = ["-c", "user.name=Assay Tests", "-c", "user.email=tests@assay.invalid"]


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` (with a test identity) and return its output."""
    proc = subprocess.run(
        ["git", "-C", str(repo), *IDENTITY, "-c", "init.defaultBranch=main", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def init_repo(repo: Path, gitignore: str | None = None, commit: bool = True) -> str | None:
    """Make ``repo`` a git repository, add everything and commit; return the commit id."""
    if gitignore is not None:
        (repo / ".gitignore").write_text(gitignore)
    git(repo, "init", "-q")
    if not commit:
        return None
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return git(repo, "rev-parse", "HEAD")


GITIGNORE = "calls.txt\ndata/\nreports/\nlogs/\nassay.db*\n__pycache__/\n.env\n"
"""What ``assay init`` ignores, plus the test projects' ``calls.txt`` and ``.env``."""
