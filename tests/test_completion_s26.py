"""Tab completion of names bash cannot take as they are (G1), and of an experiment typed
as a path from a folder in no project (G9).

Bash cuts the word being completed at ``=`` and ``:`` and inserts what it is given
without quoting it, so parameter-set names as assay's own sweeps make them
(``rate=0.01``), or with spaces, ``$`` or quotes, need assay's bash script. These tests
drive the real ``assay`` command through that script's protocol (``COMP_LINE``), and a
real interactive bash on a pseudo-terminal pressing TAB.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli

ASSAY = Path(sys.executable).parent / "assay"

# Parameter-set names bash takes apart: split at `=` and `:`, a space, expanded `$`, a
# wildcard, quotes, a history `!`, a control character.
NAMES = ["rate=0.01", "a:b", "with space", "x$y", "star*", "it's", 'say"hi', "bang!", "tab\there"]

_EXPERIMENT = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(inputs=None, outputs=["out"], cachers=[JsonCacher])
def make(record):
    return record.params.n


def run(param_sets, manager):
    for params in param_sets:
        make(assay.Record(manager, params))
"""

_PARAMS = f"""
from experiments.names import Params


def get_params():
    return [Params(name=name) for name in {NAMES!r}]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project whose experiment ``names`` ran once with every set of NAMES."""
    root = tmp_path_factory.mktemp("completion") / "proj"
    (root / "experiments").mkdir(parents=True)
    (root / "params").mkdir()
    (root / "experiments" / "names.py").write_text(_EXPERIMENT)
    (root / "params" / "odd.py").write_text(_PARAMS)
    (root / "star-file").write_text("")  # what an unescaped `star*` would turn into
    result = run_cli("run", "names", "-p", "odd", "-q", cwd=root)
    assert result.code == 0, result
    return root


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env["PATH"] = f"{ASSAY.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def complete(line: str, cwd: Path) -> list[str]:
    """What assay's bash script gets back for ``line`` with the cursor at its end."""
    env = _environment()
    env.update(
        COMP_LINE=line,
        COMP_POINT=str(len(line)),
        COMP_WORDBREAKS=" \t\n\"'@><=;|&(:",  # bash's own
        _ASSAY_COMPLETE="bash_complete",
    )
    proc = subprocess.run([ASSAY], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc
    return [line for line in proc.stdout.splitlines() if line]


# -- what the script gets: the end of the word bash replaces, quoted ---------------------


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("ra", "rate=0.01"),  # bash replaces all of `ra`
        ("rate=", "0.01"),  # bash keeps `rate=`, its own word break
        ("rate=0.0", "0.01"),
        ("a:", "b"),
        ("wi", r"with\ space"),
        (r"with\ s", r"with\ space"),
        ("'wi", "with space"),  # after an open quote, bash closes it
        ('"wi', "with space"),
        ("x", r"x\$y"),
        ('"x', r"x\$y"),
        ("st", r"star\*"),
        ("it", r"it\'s"),
        ("'it", r"it'\''s"),
        ("sa", r"say\"hi"),
        ("ba", r"bang\!"),
        ('"ba', r'bang"\!""'),  # closed here: bash would not close a word ending with `"`
        ("ta", r"$'tab\there'"),
    ],
)
def test_set_names_come_back_as_bash_inserts_them(project: Path, typed: str, expected: str):
    assert complete(f"assay run names -n {typed}", project) == [f"plain,{expected}"]


def test_an_option_s_value_after_an_equals_sign_completes(project: Path):
    assert complete("assay run names --names=wi", project) == [r"plain,with\ space"]


def test_lineage_paths_with_an_equals_sign_complete(project: Path):
    assert complete("assay lineage names/rate=0.01/", project) == ["plain,0.01/make/out"]


def test_every_name_is_offered_for_an_empty_word(project: Path):
    assert len(complete("assay run names -n ", project)) == len(NAMES)


def test_paths_still_complete_as_files(project: Path):
    assert complete("assay run ./experiments/na", project) == ["file,./experiments/na"]


def test_the_bash_script_still_generates_and_zsh_and_fish_too(project: Path):
    for shell in ("bash", "zsh", "fish"):
        env = dict(_environment(), _ASSAY_COMPLETE=f"{shell}_source")
        proc = subprocess.run([ASSAY], cwd=project, env=env, capture_output=True, text=True)
        assert proc.returncode == 0 and "_assay_completion" in proc.stdout, proc


# -- the pieces: reading the typed line, writing a name for bash ---------------------------


@pytest.mark.parametrize(
    "line, words, kept, quote",
    [
        ("assay run x -n rate=0.0", ["assay", "run", "x", "-n", "rate=0.0"], "rate=", ""),
        ("assay run x -n ", ["assay", "run", "x", "-n", ""], "", ""),
        (r"assay -n with\ s", ["assay", "-n", "with s"], "", ""),
        ("assay -n 'a=b c", ["assay", "-n", "a=b c"], "", "'"),
        ("assay -n x='a b'c:d", ["assay", "-n", "x=a bc:d"], "x=a bc:", ""),
        ('assay -n it"s', ["assay", "-n", "its"], "it", '"'),
    ],
)
def test_the_typed_line_is_read_as_bash_reads_it(line, words, kept, quote):
    from assay.cli_complete import _split_line

    typed = _split_line(line, " \t\n\"'@><=;|&(:")
    assert [w.value for w in typed] == words
    assert (typed[-1].kept, typed[-1].quote) == (kept, quote)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_reads_each_quoted_name_back_as_it_is():
    from assay.cli_complete import _quoted

    names = [*NAMES, "new\nline", "back\\slash", "~home", "#hash", "ends'", 'ends"', "σ²"]
    written = []
    for name in names:
        for quote in ("", "'", '"'):
            text = quote + _quoted(name, quote)
            if quote and not text.endswith(quote):
                text += quote  # as bash closes the quote after a single candidate
            written.append(text)
    script = "printf '%s\\0' " + " ".join(written)
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert proc.stdout.split("\0")[:-1] == [name for name in names for _ in range(3)]


# -- G9: an experiment given by path from a folder in no project --------------------------


def complete_words(line: str, cwd: Path) -> list[str]:
    """The same through click's own protocol (``COMP_WORDS``), as a completion script
    sourced from an older assay sends it."""
    env = _environment()
    current = len(line.split()) - (0 if line.endswith(" ") else 1)
    env.update(COMP_WORDS=line, COMP_CWORD=str(current), _ASSAY_COMPLETE="bash_complete")
    proc = subprocess.run([ASSAY], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc
    return [line for line in proc.stdout.splitlines() if line]


def test_an_experiment_by_path_completes_from_its_own_project(project: Path, tmp_path: Path):
    outside = tmp_path / "outside"  # in no project
    outside.mkdir()
    experiment = os.path.relpath(project / "experiments" / "names.py", outside)

    assert complete_words(f"assay run {experiment} -p ", outside) == ["plain,odd"]
    assert complete_words(f"assay params {experiment} -p o", outside) == ["plain,odd"]
    assert complete_words(f"assay run {experiment} -n wi", outside) == ["plain,with space"]
    stages = complete_words(f"assay why {experiment} --overwrite-stage ", outside)
    assert stages == ["plain,make"]
    # what `run` warns (which project it runs in) is not written over the typed line
    assert complete(f"assay run {experiment} -n wi", outside) == [r"plain,with\ space"]


# -- a real bash ----------------------------------------------------------------------------


def _bash_words_after_tab(lines: list[str], cwd: Path, out: Path) -> list[list[str]]:
    """Type each of ``lines`` into an interactive bash with assay's completion, press TAB
    once, and run the line as ``printf '%s\\0' LINE`` to ``out``: the words bash read."""
    env = _environment()
    env.update(PS1="$ ", TERM="dumb", INPUTRC="/dev/null", HISTFILE=os.devnull)
    pid, fd = pty.fork()
    if pid == 0:  # the child: bash on the pseudo-terminal
        os.chdir(cwd)
        os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], env)
    try:
        typed = b'eval "$(_ASSAY_COMPLETE=bash_source assay)"\n'
        for number, line in enumerate(lines):
            # TAB, then: to the line's start (^A), printf, to its end (^E), redirect. Keys
            # typed ahead wait while bash completes.
            typed += line.encode() + b"\t\x01printf '%s\\0' \x05"
            typed += f"> {out}.{number}; echo ENDED-''{number}\n".encode()
        os.write(fd, typed)
        _read_until(fd, f"ENDED-{len(lines) - 1}".encode())
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    return [Path(f"{out}.{n}").read_text().split("\0")[:-1] for n in range(len(lines))]


def _read_until(fd: int, marker: bytes, timeout: float = 20) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < deadline, f"bash did not finish: {seen.decode(errors='replace')}"
        if select.select([fd], [], [], 0.1)[0]:
            seen += os.read(fd, 65536)
    return seen


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_tab_in_a_real_bash_completes_names_bash_splits_or_expands(project: Path, tmp_path):
    command = "assay run names -n"
    typed = [  # (line, the word bash reads after TAB)
        (f"{command} rate=0", "rate=0.01"),  # bash completes the part after `=`
        (f"{command} ra", "rate=0.01"),
        (f"{command} a:", "a:b"),
        (f"{command} wi", "with space"),  # one word, not two
        (rf"{command} with\ s", "with space"),
        (f"{command} 'wi", "with space"),
        (f"{command} x", "x$y"),  # not $y expanded
        (f"{command} st", "star*"),  # not the file star-file
        (f"{command} 'it", "it's"),
        (f'{command} "ba', "bang!"),
        (f"{command} ta", "tab\there"),
        ("assay lineage names/rate=0.01/m", "names/rate=0.01/make/out"),
    ]
    words = _bash_words_after_tab([line for line, _ in typed], project, tmp_path / "words")
    for (line, name), got in zip(typed, words):
        assert got == [*line.split()[: 4 if line.startswith(command) else 2], name], line
