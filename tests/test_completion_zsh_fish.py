"""Tab completion in real zsh and fish, installed as the README says.

Each test starts the shell on a pseudo-terminal with no startup files, runs the README's
line (after ``compinit`` in zsh, as a ``~/.zshrc`` has it), types a command line, presses
TAB once, and runs the line as ``printf '%s\\0' LINE``: the words the shell read after
completing. Skipped only when the shell is not installed.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import run_cli
from test_completion_s26 import _EXPERIMENT, ASSAY, NAMES, _environment

# Besides bash's troubles: a comma (the answer's field separator), a newline (its line
# separator), and `next`, which a newline in the name before it must not spoil.
MORE_NAMES = ["a,b", "new\nline", "next"]

_SETUP = {
    "zsh": 'autoload -Uz compinit && compinit -u; eval "$(_ASSAY_COMPLETE=zsh_source assay)"',
    "fish": 'eval "$(_ASSAY_COMPLETE=fish_source assay)"',
}
_START = {"zsh": ["zsh", "-f", "-i"], "fish": ["fish", "--no-config", "-i"]}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project whose experiment ``names`` ran once with every set of NAMES and MORE_NAMES."""
    root = tmp_path_factory.mktemp("completion") / "proj"
    (root / "experiments").mkdir(parents=True)
    (root / "params").mkdir()
    (root / "experiments" / "names.py").write_text(_EXPERIMENT)
    (root / "params" / "odd.py").write_text(
        "from experiments.names import Params\n\n\ndef get_params():\n"
        f"    return [Params(name=name) for name in {[*NAMES, *MORE_NAMES]!r}]\n"
    )
    (root / "star-file").write_text("")  # what an unescaped `star*` would turn into
    result = run_cli("run", "names", "-p", "odd", "-q", cwd=root)
    assert result.code == 0, result
    return root


def _words_after_tab(shell: str, lines: list[str], cwd: Path, out: Path) -> list[list[str]]:
    """Type each of ``lines`` into an interactive ``shell`` with assay's completion set up
    as the README says, press TAB once, and run the line as ``printf '%s\\0' LINE``."""
    env = _environment()
    env.update(PS1="$ ", TERM="dumb", HISTFILE=os.devnull, XDG_CONFIG_HOME=str(out.parent))
    env.pop("EDITOR", None)  # zsh picks vi keys from an editor named vi
    env.pop("VISUAL", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the shell on the pseudo-terminal
        os.chdir(cwd)
        os.execvpe(shell, _START[shell], env)
    try:
        typed = _SETUP[shell].encode() + b"\n"
        for number, line in enumerate(lines):
            # TAB, then: to the line's start (^A), printf, to its end (^E), redirect
            typed += line.encode() + b"\t\x01printf '%s\\0' \x05"
            typed += f"> {out}.{number}; echo ENDED-''{number}\n".encode()
        os.write(fd, typed)
        _read_until(fd, f"ENDED-{len(lines) - 1}".encode(), shell)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    return [Path(f"{out}.{n}").read_text().split("\0")[:-1] for n in range(len(lines))]


def _read_until(fd: int, marker: bytes, shell: str, timeout: float = 30) -> None:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < deadline, (
            f"{shell} did not finish: {seen.decode('utf8', 'replace')}"
        )
        if select.select([fd], [], [], 0.1)[0]:
            seen += os.read(fd, 65536)


_COMMAND = "assay run names -n"
_TYPED = [  # (line, the words the shell reads after TAB)
    ("assay ru", ["assay", "run"]),  # a command
    ("assay run nam", ["assay", "run", "names"]),  # an experiment
    ("assay run names --overwrite-s", ["assay", "run", "names", "--overwrite-stage"]),
    ("assay run names -p o", ["assay", "run", "names", "-p", "odd"]),
    ("assay run names --overwrite-stage m", ["assay", "run", "names", "--overwrite-stage", "make"]),
    ("assay show la", ["assay", "show", "latest"]),  # offered with a description
    ("assay run ./experiments/na", ["assay", "run", "./experiments/names.py"]),
    ("assay lineage names/rate=0.01/m", ["assay", "lineage", "names/rate=0.01/make/out"]),
    (f"{_COMMAND} ra", [*_COMMAND.split(), "rate=0.01"]),
    (f"{_COMMAND} a:", [*_COMMAND.split(), "a:b"]),
    (f"{_COMMAND} wi", [*_COMMAND.split(), "with space"]),
    (f"{_COMMAND} 'wi", [*_COMMAND.split(), "with space"]),
    (f"{_COMMAND} x", [*_COMMAND.split(), "x$y"]),
    (f"{_COMMAND} st", [*_COMMAND.split(), "star*"]),  # not the file star-file
    (f"{_COMMAND} 'it", [*_COMMAND.split(), "it's"]),
    (f"{_COMMAND} sa", [*_COMMAND.split(), 'say"hi']),
    (f"{_COMMAND} a,", [*_COMMAND.split(), "a,b"]),
    (f"{_COMMAND} nex", [*_COMMAND.split(), "next"]),
    ("assay run names --names=wi", ["assay", "run", "names", "--names=with space"]),
]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_tab_in_a_real_shell_completes_commands_experiments_options_and_names(
    shell: str, project: Path, tmp_path: Path
):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (apt-get install {shell})")
    words = _words_after_tab(shell, [line for line, _ in _TYPED], project, tmp_path / "words")
    wrong = [(line, got) for (line, expected), got in zip(_TYPED, words) if got != expected]
    assert wrong == []


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_a_name_the_shell_cannot_take_whole_is_not_offered_cut_short(shell: str, project: Path):
    """A tab in fish starts the description; a newline in either starts another line."""
    env = dict(_environment(), _ASSAY_COMPLETE=f"{shell}_complete")
    if shell == "zsh":
        env.update(COMP_WORDS=f"{_COMMAND} ", COMP_CWORD="4")
    else:
        env.update(COMP_WORDS=f"{_COMMAND} ", COMP_CWORD="")
    proc = subprocess.run([ASSAY], cwd=project, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc
    assert "new" not in proc.stdout and ("tab" not in proc.stdout) == (shell == "fish")
