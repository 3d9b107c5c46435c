"""What a benchmark section hands back, and how it is shown: a rich table and RESULTS.md."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table as RichTable

from benchmarks.harness import Sample

Cell = str | Sample | None


@dataclass
class Table:
    """One table of figures; a cell is a :class:`Sample`, a text, or ``None`` (not measured)."""

    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    left: int = 1
    """How many leading columns are labels (aligned left); the rest are figures."""


@dataclass
class Target:
    """A target of issue 3 and whether this run met it."""

    figure: str
    anchor: str
    target: str
    measured: str
    met: bool | None
    """``None``: cannot be measured yet (the feature does not exist)."""
    why: str = ""
    """Shown when the target is missed: why, and what would close it."""
    profile: tuple | None = None
    """Which run of the profile section explains a miss (``(mode, n)``), if any."""

    @property
    def verdict(self) -> str:
        return {True: "met", False: "missed", None: "n/a"}[self.met]


@dataclass
class Section:
    """The outcome of one benchmark section."""

    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    seconds: float = 0.0
    data: dict = field(default_factory=dict)
    """Raw results other sections may use (the profile section's profiles)."""


def attach_evidence(sections: list[Section]) -> None:
    """Append to each missed target's note what this run's profile says about it."""
    profiles = next((s.data["profiles"] for s in sections if "profiles" in s.data), {})
    for target in (t for s in sections for t in s.targets):
        found = profiles.get(target.profile)
        if target.met is not False or not found:
            continue
        total = found["total"] or 1.0
        own = ", ".join(
            f"`{_short(n)}` {o / total * 100:.0f} %" for n, _c, o, _cu in found["own"][:4]
        )
        heavy = [r for r in found["assay"] if not r[0].endswith(("(run_experiment)", "(wrapper)"))]
        ours = ", ".join(f"`{_short(n)}` {cu:.2f} s" for n, _c, _o, cu in heavy[:4])
        mode, n = target.profile
        target.why += (
            f" *This run's profile ({mode}, N={n:,}; §profile):* most own time in {own}; "
            f"assay's heaviest calls {ours}, of {total:.2f} s."
        )


def _short(name: str) -> str:
    """``posix.mkdir`` for ``~:0(<built-in method posix.mkdir>)``; other names as they are."""
    if name.startswith("~:0(<") and name.endswith(">)"):
        name = name[len("~:0(<") : -2]
        return name.replace("built-in method ", "").replace("method ", "")
    return name


def text(cell: Cell) -> str:
    return "—" if cell is None else str(cell)


# -- console ---------------------------------------------------------------------------


def show(console: Console, sections: list[Section]) -> None:
    """Print every section's tables, then the targets."""
    for section in sections:
        for table in section.tables:
            shown = RichTable(title=f"{section.title}: {table.title}", title_justify="left")
            for i, column in enumerate(table.columns):
                shown.add_column(column, justify="left" if i < table.left else "right")
            for row in table.rows:
                shown.add_row(*(text(c) for c in row))
            console.print(shown)
    targets = [t for s in sections for t in s.targets]
    if targets:
        shown = RichTable(title="Targets (issue 3)", title_justify="left")
        for column in ("figure", "target", "measured", ""):
            shown.add_column(column)
        colors = {"met": "green", "missed": "red", "n/a": "yellow"}
        for t in targets:
            verdict = f"[{colors[t.verdict]}]{t.verdict}[/]"
            shown.add_row(t.figure, t.target, t.measured, verdict)
        console.print(shown)


# -- RESULTS.md ------------------------------------------------------------------------


def markdown(sections: list[Section], preamble: list[str]) -> str:
    """RESULTS.md: the preamble (date, machine, versions, method), the targets, every table."""
    lines = list(preamble)
    targets = [t for s in sections for t in s.targets]
    if targets:
        lines += ["## Targets (issue 3)", ""]
        lines += _markdown_table(
            ["figure", "anchor (Curifactory)", "target", "measured (median)", "verdict"],
            [[t.figure, t.anchor, t.target, t.measured, f"**{t.verdict}**"] for t in targets],
            left=5,
        )
        missed = [t for t in targets if t.met is not True and t.why]
        if missed:
            lines += ["", "### Where a target is missed: why, and what would close it", ""]
            for t in missed:
                lines += [f"- **{t.figure}** ({t.verdict}): {t.why}"]
        lines.append("")
    for number, section in enumerate(sections, 1):
        lines += [f"## {number}. {section.title}", ""]
        for table in section.tables:
            lines += [f"**{table.title}**", ""]
            rows = [[text(c) for c in r] for r in table.rows]
            lines += _markdown_table(table.columns, rows, table.left)
            lines.append("")
        lines += [f"- {note}" for note in section.notes]
        lines += ["", f"_Section time: {section.seconds:.0f} s._", ""]
    return "\n".join(lines).rstrip() + "\n"


def _markdown_table(columns: list[str], rows: list[list[str]], left: int) -> list[str]:
    """A Markdown table; the first ``left`` columns are aligned left, the figures right."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---"] * left + ["---:"] * (len(columns) - left)
    return [line(columns), "|" + "|".join(align) + "|"] + [line(r) for r in rows]
