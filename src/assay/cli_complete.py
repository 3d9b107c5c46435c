"""Tab completion for the ``assay`` command line (see :mod:`assay.cli` for enabling it).

Completers read files only (the project's folders, the run store, the cache's by-name
folder), never an experiment; on any error they offer nothing rather than a traceback.
An experiment typed as a path from a folder in no project is completed from its own
project, where it runs.

In bash, what is offered is written as bash reads it back (``with\\ space``), and
names with ``=`` or ``:`` complete although bash splits words there (see
:class:`BashCompletion`). zsh and fish quote what they insert themselves
(:class:`ZshCompletion`, :class:`FishCompletion`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ZshComplete,
    add_completion_class,
)

_COMPLETED_RUNS = 200  # the newest runs whose numbers, ids and names are offered


def completer(find: Callable[[click.Context, str], list]) -> Callable:
    """A ``shell_complete`` function offering ``find(ctx, incomplete)``, or nothing if it fails."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
        logger = logging.getLogger("assay")
        was_disabled, logger.disabled = logger.disabled, True  # no warning on the typed line
        try:
            found = find(ctx, incomplete)
        except Exception:  # a broken assay.toml, an unreadable store: no candidates
            return []
        finally:
            logger.disabled = was_disabled
        return [c if isinstance(c, CompletionItem) else CompletionItem(c) for c in found]

    return complete


def _looks_like_path(incomplete: str) -> bool:
    return "/" in incomplete or incomplete.endswith(".py") or incomplete.startswith((".", "~"))


def complete_modules(folder_setting: str) -> Callable:
    """Shell completion for an experiment or parameter file: a name in its folder
    (``sub.name`` for ``sub/name.py``), or a path once what is typed looks like one."""

    def find(ctx: click.Context, incomplete: str) -> list:
        if _looks_like_path(incomplete):
            return [CompletionItem(incomplete, type="file")]
        folder = getattr(_project(ctx), folder_setting)
        modules = [p.relative_to(folder).with_suffix("").parts for p in folder.rglob("*.py")]
        names = (
            ".".join(parts)
            for parts in modules
            if not any(part.startswith(("_", ".")) for part in parts)  # .ipynb_checkpoints/
        )
        return sorted(n for n in names if n.startswith(incomplete))

    return completer(find)


def _project(ctx: click.Context):
    """The project the command would run in: the current folder's, or the own project of
    an experiment typed as a path from a folder in no project (as ``assay run`` does)."""
    from assay.config import ProjectConfig
    from assay.project import project_root_for

    takes_experiment = any(p.name == "experiment" for p in ctx.command.params)
    typed = _typed(ctx) if takes_experiment else None
    return ProjectConfig.load(project_root_for(typed) if typed else None)


def _completion_store(ctx: click.Context):
    """The project's run store to read candidates from (an error if there is none)."""
    from assay.store import RunStore

    path = _project(ctx).store_path
    if not path.is_file():
        raise FileNotFoundError(path)
    return RunStore(path)


def complete_runs(ctx: click.Context, incomplete: str) -> list:
    """Run numbers (or ids, once a letter is typed) and ``latest``, newest first."""
    with _completion_store(ctx) as store:
        runs = store.list_runs(limit=_COMPLETED_RUNS)
    found = []
    if runs and "latest".startswith(incomplete):
        found.append(CompletionItem("latest", help=runs[0].id))
    for run in runs:
        if incomplete.isdigit() or not incomplete:
            if str(run.number).startswith(incomplete):
                found.append(CompletionItem(str(run.number), help=f"{run.id} {run.status}"))
        elif run.id.startswith(incomplete):
            found.append(CompletionItem(run.id, help=run.status))
    return found


def _typed(ctx: click.Context) -> str | None:
    """The EXPERIMENT typed before the word being completed, as typed (if any)."""
    # Before an option still waiting for its value (`-n <TAB>`), click leaves it unparsed.
    return ctx.params.get("experiment") or next(iter(ctx.args), None)


def _typed_experiment(ctx: click.Context) -> str | None:
    """The experiment's name as runs record it, from the EXPERIMENT typed before (if any)."""
    typed = _typed(ctx)
    if not typed:
        return None
    return Path(typed).stem if _looks_like_path(typed) else typed


def _runs_of_typed_experiment(ctx: click.Context) -> list:
    with _completion_store(ctx) as store:
        return store.list_runs(experiment=_typed_experiment(ctx), limit=_COMPLETED_RUNS)


def complete_set_names(ctx: click.Context, incomplete: str) -> list:
    """``-n``: the parameter-set names the experiment's recent runs used."""
    names = dict.fromkeys(n for run in _runs_of_typed_experiment(ctx) for n in run.param_names)
    return [n for n in names if n.startswith(incomplete)]


def complete_stages(ctx: click.Context, incomplete: str) -> list:
    """``--overwrite-stage``: the stages of the experiment's latest run."""
    runs = _runs_of_typed_experiment(ctx)
    if not runs:
        return []
    with _completion_store(ctx) as store:
        stages = dict.fromkeys(s.stage for s in store.stages(runs[0].id))
    return [s for s in stages if s.startswith(incomplete)]


def complete_experiment_runs(ctx: click.Context, incomplete: str) -> list:
    """``ls -e``: the experiments the run store has runs of."""
    with _completion_store(ctx) as store:
        return [name for name in store.experiments() if name.startswith(incomplete)]


def _by_name_folder(ctx: click.Context) -> Path:
    """The ``by-name`` folder of the cache ``--cache`` (or the project's settings) names."""
    config = _project(ctx).with_cache_dir(cache_from_command_line(ctx.params.get("cache_dir")))
    if config.cache_url:  # a cache at a URL: not listed for completion
        raise FileNotFoundError(config.cache_url)
    return config.cache_dir / "by-name"


def complete_cached_experiments(ctx: click.Context, incomplete: str) -> list:
    """``cache ls -e``: the experiments the cache files artifacts under."""
    return sorted(p.name for p in _by_name_folder(ctx).iterdir() if p.name.startswith(incomplete))


def complete_artifacts(ctx: click.Context, incomplete: str) -> list:
    """``lineage``: EXPERIMENT/PARAMETER-SET/STAGE/OUTPUT as the cache's by-name folder
    holds them (the levels typed are matched, not listed), or a path once one is typed."""
    from assay.keys import OWN_ENTRIES

    if incomplete.startswith(("/", ".", "~")):
        return [CompletionItem(incomplete, type="file")]
    typed = incomplete.split("/")
    found: list[str] = []

    def walk(folder: Path, parts: list[str]) -> None:
        depth = len(parts)
        if depth == 3:  # a stage's folder: its outputs are the names of its sidecars
            outputs = (p.name[: -len(".meta.json")] for p in folder.glob("*.meta.json"))
            children = [name for name in outputs if name not in OWN_ENTRIES]
        else:
            children = [p.name for p in folder.iterdir() if p.is_dir()]
        for name in sorted(children):
            if depth < len(typed) - 1 and name != typed[depth]:
                continue
            if depth == len(typed) - 1 and not name.startswith(typed[depth]):
                continue
            if depth == 3:
                found.append("/".join([*parts, name]))
            elif len(found) < 2000:
                walk(folder / name, [*parts, name])

    walk(_by_name_folder(ctx), [])
    return found


def cache_from_command_line(cache_dir: str | None) -> Path | None:
    """``--cache DIR``: a relative folder is taken from the current folder, as ``-p`` and
    experiment paths are (``cache_dir`` in assay.toml is taken from the project root). An
    exported run's folder means its ``cache/`` folder."""
    if cache_dir is None:
        return None
    from assay.config import from_command_line
    from assay.export.full import export_cache_of

    return export_cache_of(from_command_line(cache_dir))


# -- bash ------------------------------------------------------------------------------

# Like click's script, but it sends bash the line as typed (COMP_LINE, not COMP_WORDS,
# which bash has cut at `=` and `:`), and takes each line of the answer whole: no word
# splitting, no wildcards expanded, backslashes kept (`read -r`).
_SOURCE_BASH = """\
%(complete_func)s() {
    local response completion
    response=$(env COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" \
COMP_WORDBREAKS="$COMP_WORDBREAKS" %(complete_var)s=bash_complete "$1")
    while IFS= read -r completion; do
        case ${completion%%%%,*} in
            dir) COMPREPLY=(); compopt -o dirnames ;;
            file) COMPREPLY=(); compopt -o default ;;
            plain) COMPREPLY+=("${completion#*,}") ;;
        esac
    done <<< "$response"
    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""

# What bash splits words at when COMP_WORDBREAKS is unset.
_DEFAULT_WORDBREAKS = " \t\n\"'@><=;|&(:"
# Characters written as they are; any other is escaped (`\ `, `\$`, `\*`).
_PLAIN = frozenset("_-./:=,+@%^")


class BashCompletion(BashComplete):
    r"""Bash completion whose candidates bash can insert as they are.

    Bash replaces only the end of the word after its last ``=`` or ``:`` (the
    characters of ``COMP_WORDBREAKS``), or after an opening quote the researcher typed;
    and it inserts what it is given without quoting it. So the script sends the whole
    command line, and each candidate is cut to the part bash replaces and quoted as the
    word is (``with\ space``, ``'it'\''s``, ``$'tab\there'``).

    Registered for ``bash_source`` / ``bash_complete`` when this module is imported. A
    script sourced from an older assay (click's, which sends no ``COMP_LINE``) gets
    answers as before.
    """

    source_template = _SOURCE_BASH
    _word: _TypedWord | None = None

    def get_completion_args(self) -> tuple[list[str], str]:
        if "COMP_LINE" not in os.environ:
            return super().get_completion_args()
        line, point = os.environ["COMP_LINE"], os.environ.get("COMP_POINT", "")
        if point.isdigit():  # a count of characters
            line = line[: int(point)]
        breaks = os.environ.get("COMP_WORDBREAKS") or _DEFAULT_WORDBREAKS
        words = _split_line(line, breaks)  # from the command's name on (bash drops `X=1 `)
        self._word = words[-1]
        return [w.value for w in words[1:-1]], self._word.value

    def format_completion(self, item: CompletionItem) -> str:
        if self._word is None or item.type != "plain":
            return super().format_completion(item)
        return f"plain,{self._word.replacement(item.value)}"

    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
        found = super().get_completions(args, incomplete)
        if self._word is None:
            return found
        return [c for c in found if self._word.can_become(c)]  # others bash cannot put in


class _TypedWord:
    """The word being completed: what it means (``value``), and how much of it bash keeps
    when it puts a candidate in (everything before its last word break or open quote)."""

    def __init__(self) -> None:
        self.value = ""
        self.kept = ""  # the start of `value` that bash keeps
        self.quote = ""  # the quote left open at the cursor, if any

    def _whole(self, candidate: str) -> str:
        # click completes `--names=wi` as `wi`: the option is part of the word
        if self.value.startswith("-") and "=" in self.value:
            return self.value.partition("=")[0] + "=" + candidate
        return candidate

    def can_become(self, item: CompletionItem) -> bool:
        return item.type != "plain" or self._whole(item.value).startswith(self.kept)

    def replacement(self, candidate: str) -> str:
        """What bash is to put in place of the end of the word to make it ``candidate``."""
        return _quoted(self._whole(candidate)[len(self.kept) :], self.quote)


def _split_line(line: str, breaks: str) -> list[_TypedWord]:
    """The words of a bash command line up to the cursor, the last one (perhaps empty) the
    word being completed; quotes and backslashes are read as bash reads them."""
    words = [_TypedWord()]
    quote = ""
    escaped = False
    started = False  # the current word has begun (`''` is a word, an empty one)
    kept_at_break = ""  # the word's value up to its last word break outside quotes
    for char in line:
        word = words[-1]
        if escaped:
            escaped = False
            if quote == '"' and char not in '$`"\\\n':
                word.value += "\\"
            if char != "\n":  # backslash-newline joins lines
                word.value += char
        elif char == quote:
            quote = ""
        elif quote == "'":
            word.value += char
        elif char == "\\":
            escaped = started = True
        elif quote == '"':
            word.value += char
        elif char in "'\"":
            quote, word.quote, word.kept, started = char, char, word.value, True
        elif char in " \t\n":
            if started:
                words.append(_TypedWord())
                started, kept_at_break = False, ""
        else:
            word.value += char
            started = True
            if char in breaks:
                kept_at_break = word.value
    if not quote:  # bash replaces the end after the last word break
        words[-1].quote, words[-1].kept = "", kept_at_break
    return words


def _quoted(text: str, quote: str) -> str:
    """``text`` written for bash after an open ``quote`` (``'``, ``"``) or none."""
    if not quote:
        if any(_is_control(c) for c in text):
            return _ansi_c(text)
        return "".join(c if c.isalnum() or c in _PLAIN else "\\" + c for c in text)
    out = []
    for char in text:
        if _is_control(char) or char == quote or (char == "!" and quote == '"'):
            # closed, written outside the quotes, opened again
            out.append(quote + _quoted(char, "") + quote)
        elif quote == '"' and char in "$`\\":
            out.append("\\" + char)
        else:
            out.append(char)
    if out and out[-1].endswith(quote) and len(out[-1]) > 1:
        out.append(quote)  # bash closes the quote unless the word ends with one already
    return "".join(out)


def _is_control(char: str) -> bool:
    return char < " " or char == "\x7f"


def _ansi_c(text: str) -> str:
    """``text`` as a ``$'...'`` word, for names holding tabs, newlines and the like."""
    escapes = {"\\": "\\\\", "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
    body = "".join(escapes.get(c) or (f"\\x{ord(c):02x}" if _is_control(c) else c) for c in text)
    return f"$'{body}'"


add_completion_class(BashCompletion)


# -- zsh and fish ----------------------------------------------------------------------


def _option_value_prefix(incomplete: str) -> str:
    """``--names=`` of a word ``--names=wi``: click completes only ``wi``, but zsh and
    fish replace the whole word, so each candidate is sent with the option before it."""
    if incomplete.startswith("-") and "=" in incomplete:
        return incomplete.partition("=")[0] + "="
    return ""


class _WholeWords:
    """Completion whose candidates are whole words: the value typed after ``--names=`` is
    completed with the option kept in front (``--names=with space``)."""

    _prefix = ""

    def get_completion_args(self) -> tuple[list[str], str]:
        args, incomplete = super().get_completion_args()  # type: ignore[misc]
        self._prefix = _option_value_prefix(incomplete)
        return args, incomplete

    def format_completion(self, item: CompletionItem) -> str:
        if item.type == "plain":
            item = CompletionItem(self._prefix + item.value, type=item.type, help=item.help)
        return super().format_completion(item)  # type: ignore[misc]


class ZshCompletion(_WholeWords, ZshComplete):
    """Zsh completion: candidates are whole words (``--names=with space``), and a name
    holding a newline, which would shift every line of the answer after it, is left out.

    Registered for ``zsh_source`` / ``zsh_complete`` when this module is imported.
    """

    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
        found = super().get_completions(args, incomplete)
        return [c for c in found if "\n" not in c.value]


# Like click's, but a candidate is cut from its type at the first comma only (names may
# hold commas), and written with printf (echo would take a name like `-e` as an option).
_SOURCE_FISH = """\
function %(complete_func)s;
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) \
COMP_CWORD=(commandline -t) %(prog_name)s);

    for completion in $response;
        set -l metadata (string split -m 1 "," -- $completion);

        if test $metadata[1] = "dir";
            __fish_complete_directories $metadata[2];
        else if test $metadata[1] = "file";
            __fish_complete_path $metadata[2];
        else if test $metadata[1] = "plain";
            printf '%%s\\n' $metadata[2];
        end;
    end;
end;

complete --no-files --command %(prog_name)s --arguments "(%(complete_func)s)";
"""


class FishCompletion(_WholeWords, FishComplete):
    """Fish completion: candidates are whole words (``--names=with space``), and names
    fish cannot be given (a tab starts a candidate's description, a newline another
    candidate) are left out rather than offered cut short.

    Registered for ``fish_source`` / ``fish_complete`` when this module is imported.
    """

    source_template = _SOURCE_FISH

    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
        found = super().get_completions(args, incomplete)
        return [c for c in found if not any(_is_control(ch) for ch in c.value)]


add_completion_class(ZshCompletion)
add_completion_class(FishCompletion)
