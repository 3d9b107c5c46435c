"""Reportables: what stages add to a run's report with ``record.report(...)``.

A reportable turns something a stage computed (a table, a figure, a dict of
scores) into HTML for the run's report. Stages create them and hand them to
the record::

    @assay.stage(inputs=["model"], outputs=["score"])
    def evaluate(record, model):
        score = model.score(...)
        record.report(JsonReporter({"accuracy": score}, name="scores"))
        return score

Write your own by subclassing :class:`Reportable` and defining ``html()``
(and ``render()`` if it writes files, such as images, beside the report).

The built-in reportables (all take ``name=`` and ``group=``):

=====================  ==============================================================
``JsonReporter``       a dict, list or number, as indented JSON
``DFReporter``         a pandas DataFrame (or Series) as a table; long ones truncated
``FigureReporter``     a matplotlib figure, saved as PNG (or SVG) beside the report
``LinePlotReporter``   line plots of a list, or a dict of lists (needs matplotlib)
``ImageReporter``      an image file (PNG, JPEG, SVG, ...) copied beside the report
``LatexTableReporter`` a DataFrame as a LaTeX table, shown and saved as ``.tex``
``HTMLReporter``       raw HTML, inserted as is (**not** escaped: only trusted HTML)
=====================  ==============================================================

Everything but ``HTMLReporter`` escapes the text it shows, so values such as
``"<b>"`` appear literally. A subclass must escape user text itself
(``html.escape``): the report inserts ``html()``'s result unchanged.

Files: the report calls ``render()`` once, with ``self.path`` set to an empty
folder reserved for this reportable, then calls ``html()`` with ``self.path``
set to that same folder *relative to the report page*, so
``f'<img src="{self.path}/plot.png">'`` works in both (use
:meth:`Reportable.file_url`, which also quotes the name for a URL).
"""

from __future__ import annotations

import html as _html
import io
import json
import os
import posixpath
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from assay.compat import names_curifactory_has

__all__ = [
    "DFReporter",
    "FigureReporter",
    "HTMLReporter",
    "ImageReporter",
    "JsonReporter",
    "LatexTableReporter",
    "LinePlotReporter",
    "Reportable",
    "ReportableCopy",
]


class Reportable:
    """Base class of everything a stage can put into the report.

    Args:
        name: a short name, shown as the reportable's title; it also names any
            file the reportable writes. Defaults to a running number.
        group: reportables of a record with the same group are shown together.

    Attributes set by ``record.report``: ``record``, ``stage`` and
    ``qualified_name`` (e.g. ``"trees_10_train_scores"``), which a reportable may name
    its files after, as Curifactory's do: it holds no ``/``, ``#``, ``?``, ``%``, quote
    or ``<``, so ``f"{self.path}/{self.qualified_name}.png"`` stays in ``path`` and
    works as an ``src``.
    ``path`` is the folder a reportable may write files into (set before
    ``render()`` is called).
    """

    def __init__(self, name: str | None = None, group: str | None = None):
        self.name = name
        self.group = group
        self.qualified_name = name
        self.record: Any = None
        self.stage = ""
        self.path = ""
        self.rendered = False

    def html(self) -> str | list[str]:
        """The HTML for the report (a string or a list of lines); escape user text."""
        raise NotImplementedError(f"{type(self).__name__} must define html().")

    def render(self) -> None:
        """Write any files the HTML refers to into ``self.path`` (optional)."""

    def file_name(self, extension: str) -> str:
        """A safe file name for a file this reportable writes: ``"<name>.<extension>"``."""
        stem = self.name if self.name is not None else self.qualified_name
        stem = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", str(stem or type(self).__name__)).strip("._")
        return f"{stem[:80] or 'file'}.{extension.lstrip('.')}"

    def file_url(self, file_name: str) -> str:
        """The ``src``/``href`` of a file written by :meth:`render`, escaped for an attribute."""
        path = posixpath.join(Path(self.path).as_posix(), file_name) if self.path else file_name
        return _html.escape(quote(path, safe="/:._-~"), quote=True)

    def _repr_html_(self) -> str:
        """Jupyter's display: the HTML, with any files it renders inlined as data URLs."""
        from assay.report.notebook import inline_html

        return inline_html(self)

    def __getattr__(self, name: str) -> Any:
        """A name of Curifactory's reportables that assay does not keep: says what to use."""
        from assay.compat import missing_attribute

        raise missing_attribute(self, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, stage={self.stage!r})"


class ReportableCopy(Reportable):
    """What a reportable that cannot be pickled shows, in a form that can: its HTML and
    the files its ``render()`` wrote, made at once.

    A reportable holding a lambda, a lock or an open file cannot be cached with its stage
    or sent back from a ``--parallel``/Dask worker; this copy of it can, so a reuse of
    the stage, and the report of a parallel run, still show it. ``kind`` is the type of
    the reportable copied (the report shows that type); an error its ``render()`` or
    ``html()`` raised is raised again by the copy's ``html()``, so the report names it.
    """

    def __init__(self, original: Reportable):
        import tempfile
        import uuid

        from assay.report.collect import as_text

        super().__init__(name=original.name, group=original.group)
        self.qualified_name = original.qualified_name
        self.stage = original.stage
        self.kind = type(original).__name__
        self.marker = f"assay-copy-{uuid.uuid4().hex}"  # stands for the path in the HTML
        self.files: dict[str, bytes] = {}
        self.body = ""
        self.error: str | None = None
        saved = original.path
        with tempfile.TemporaryDirectory(prefix="assay-") as folder:
            try:
                original.path = folder
                original.render()
                self.files = {
                    file.relative_to(folder).as_posix(): file.read_bytes()
                    for file in sorted(Path(folder).rglob("*"))
                    if file.is_file()
                }
                original.path = self.marker
                self.body = as_text(original.html())
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"
            finally:
                original.path = saved

    def render(self) -> None:
        for name, data in self.files.items():
            target = Path(self.path, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def html(self) -> str:
        if self.error is not None:
            raise RuntimeError(self.error)
        return self.body.replace(self.marker, str(self.path))


def reportable_kind(reportable: Any) -> str:
    """The type a reportable is shown as: its own, or for a :class:`ReportableCopy` the
    type of the reportable copied."""
    if isinstance(reportable, ReportableCopy):
        return reportable.kind
    return type(reportable).__name__


_UNSAFE_IN_FILE_NAMES = re.compile(r"""[/\\#?%'"<>&:*|\x00-\x1f\x7f]""")
"""Characters that would make a name leave its folder, or break a URL or an attribute."""


def safe_name(text: str) -> str:
    """``text`` usable as a file name and, as it is, in an ``src``: path separators,
    URL marks (``#?%``), quotes, ``<>&`` and control characters become ``_``."""
    return _UNSAFE_IN_FILE_NAMES.sub("_", text)


def not_set_up(reportable: Any) -> str | None:
    """What ``record.report(reportable)`` says of a reportable whose ``__init__`` did not
    call ``Reportable.__init__`` (so it has no name, group or path); ``None`` if it did."""
    attributes = getattr(reportable, "__dict__", None)
    if attributes is None or "name" in attributes and "group" in attributes:
        return None
    kind = type(reportable).__name__
    return (
        f"{kind} is not set up as a reportable: its __init__ must call "
        f"super().__init__(name=name, group=group), which gives it the name, group and "
        f"folder the report uses."
    )


def not_a_reportable(value: Any) -> str:
    """What ``record.report(value)`` says of a value that is no reportable, with the one
    that shows it: ``FigureReporter(figure)`` for a figure, and so on."""
    if hasattr(value, "savefig"):
        wrap = "FigureReporter(figure)"
    elif hasattr(value, "to_frame") or hasattr(value, "to_html") and hasattr(value, "head"):
        wrap = "DFReporter(table)"
    elif isinstance(value, (str, os.PathLike)) and Path(value).suffix.lower() in _IMAGE_TYPES:
        wrap = "ImageReporter(path)"
    else:
        wrap = "JsonReporter(value)"
    return (
        f"record.report() takes a reportable, not a {type(value).__name__}: report "
        f"{wrap}, with a name= (see assay.reporting), or a Reportable of your own."
    )


class JsonReporter(Reportable):
    """A dict (or anything JSON-able) shown as indented JSON.

    ``record.report(JsonReporter({"accuracy": 0.93, "n": 150}, name="scores"))``
    """

    def __init__(self, dictionary: Any, name: str | None = None, group: str | None = None):
        super().__init__(name=name, group=group)
        self.data = dictionary

    def html(self) -> str:
        from assay.caching import metadata_default  # numpy numbers as numbers, not text

        text = json.dumps(_json_keys(self.data), indent=4, default=metadata_default)
        return f"<pre>{_html.escape(text)}</pre>"


def _json_keys(value: Any) -> Any:
    """``value`` with every dict key JSON cannot hold (a numpy number, a tuple) as text,
    as ``str`` shows it: ``{np.int64(3): 2}`` -> ``{"3": 2}``."""
    if isinstance(value, dict):
        return {_json_key(key): _json_keys(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_keys(item) for item in value]
    return value


def _json_key(key: Any) -> Any:
    return key if isinstance(key, (str, int, float, bool, type(None))) else str(key)


class HTMLReporter(Reportable):
    """Raw HTML, inserted into the report as it is.

    ``record.report(HTMLReporter("<h3>Notes</h3><p>All folds converged.</p>"))``

    The HTML is **not escaped**: it can change the whole page, run scripts, or
    load things from the network. Give it only HTML you wrote yourself, and
    escape any data you put in it (``html.escape(text)``). For text, use
    :class:`JsonReporter`; for tables, :class:`DFReporter`.

    Args:
        html_string: the HTML, as one string or a list of lines.
    """

    def __init__(
        self, html_string: str | list[str], name: str | None = None, group: str | None = None
    ):
        super().__init__(name=name, group=group)
        self.html_string = html_string

    def html(self) -> str | list[str]:
        return self.html_string


class DFReporter(Reportable):
    """A pandas DataFrame (or Series) as an HTML table.

    ``record.report(DFReporter(results, name="results", float_prec=3))``

    Args:
        df: the DataFrame or Series.
        float_prec: digits after the decimal point for floats (Curifactory's name).
        float_format: instead of ``float_prec``, a format spec (``".2e"``), a
            format string (``"{:.1%}"``) or a function of one float.
        max_rows: show at most this many rows (the first ones) and say how many
            there are; the report stays small for big tables. ``None`` shows them all.
        max_cols: the same for columns (a wide frame: a confusion matrix of 1,000
            classes, a matrix of features); ``None`` shows them all.

    Cell values, column and index labels are escaped. Only the rows and columns
    shown are kept once the stage ends (a reused stage reports the same table).
    """

    def __init__(
        self,
        df: Any,
        name: str | None = None,
        group: str | None = None,
        float_prec: int | None = 4,
        float_format: Any = None,
        max_rows: int | None = 200,
        max_cols: int | None = 100,
    ):
        super().__init__(name=name, group=group)
        self.df = _table(df)
        self.float_prec = float_prec
        self.float_format = float_format
        self.max_rows = max_rows
        self.max_cols = max_cols
        self.total_rows = len(df)
        self.total_columns = len(getattr(df, "columns", [None]))

    def _formatter(self) -> Any:
        spec = self.float_format
        if callable(spec):
            return spec
        if isinstance(spec, str):
            return (lambda v: spec.format(v)) if "{" in spec else (lambda v: format(v, spec))
        if self.float_prec is not None:
            digits = self.float_prec
            return lambda v: f"{v:.{digits}f}"
        return None

    def html(self) -> str:
        frame = self.df.to_frame() if hasattr(self.df, "to_frame") else self.df
        shown = self._shown(frame)
        table = shown.to_html(
            escape=True, float_format=self._formatter(), border=0, classes="assay-table"
        )
        # one cached by an assay without max_cols holds every column
        columns = self.__dict__.get("total_columns", len(frame.columns))
        if self.total_rows > len(shown):
            table += (
                f'<p class="note">The first {len(shown):,} of {self.total_rows:,} rows '
                f"({columns:,} column{'' if columns == 1 else 's'}).</p>"
            )
        if columns > len(shown.columns):
            table += f'<p class="note">The first {len(shown.columns):,} of {columns:,} columns.</p>'
        return f'<div class="table-wrap">{table}</div>'

    def _shown(self, frame: Any) -> Any:
        """The part of ``frame`` the report shows: the first ``max_rows`` rows and
        ``max_cols`` columns (all of them for ``None``)."""
        rows, columns = self.max_rows, self.__dict__.get("max_cols")
        if rows is not None and len(frame) > rows:
            frame = frame.head(rows)
        if columns is not None and getattr(frame, "ndim", 1) == 2 and frame.shape[1] > columns:
            frame = frame.iloc[:, :columns]
        return frame

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if state.get("df") is not None:
            state["df"] = self._shown(state["df"])
        return state


def _table(df: Any) -> Any:
    """``df`` if it is a DataFrame or a Series; otherwise a ``TypeError`` saying what to pass."""
    if hasattr(df, "to_frame") or hasattr(df, "to_html") and hasattr(df, "head"):
        return df
    hint = ""
    if hasattr(df, "to_html") and hasattr(df, "data"):  # a pandas Styler
        hint = (
            ": for its styling, report HTMLReporter(styler.to_html()); for its table, "
            "DFReporter(styler.data)"
        )
    raise TypeError(
        f"DFReporter shows a pandas DataFrame or Series, not a {type(df).__name__}{hint}."
    )


class LatexTableReporter(Reportable):
    """A DataFrame as a LaTeX table: shown in the report and saved as a ``.tex`` file.

    ``record.report(LatexTableReporter(results, name="table1", hrules=True, caption="Results"))``

    Args:
        df: the DataFrame (a Series is shown as a one-column table).
        **kwargs: passed to ``df.style.to_latex()``, pandas' ``Styler.to_latex``
            (``caption=``, ``label=``, ``hrules=``, ``column_format=``, ...), as in
            Curifactory. Keyword arguments that only ``DataFrame.to_latex`` takes
            (``float_format=``, ``index=``, ...) make it use ``df.to_latex()`` instead.
    """

    def __init__(self, df: Any, name: str | None = None, group: str | None = None, **kwargs: Any):
        super().__init__(name=name, group=group)
        self.latex: str = _latex(df, kwargs)

    def render(self) -> None:
        Path(self.path, self.file_name("tex")).write_text(self.latex, encoding="utf-8")

    def html(self) -> str:
        link = self.file_url(self.file_name("tex"))
        return (
            f"<pre>{_html.escape(self.latex)}</pre>"
            f'<p class="note"><a href="{link}">{_html.escape(self.file_name("tex"))}</a></p>'
        )


def _latex(df: Any, kwargs: dict[str, Any]) -> str:
    """``df.style.to_latex(**kwargs)``, or ``df.to_latex(**kwargs)`` for keyword arguments
    that only the latter takes (what assay passed them to before)."""
    import inspect

    if not hasattr(df, "style") and hasattr(df, "to_frame"):  # a Series
        df = df.to_frame()
    styler = df.style
    takes = inspect.signature(styler.to_latex).parameters
    if any(k not in takes for k in kwargs):
        frame_takes = inspect.signature(df.to_latex).parameters
        if all(k in frame_takes for k in kwargs):
            return df.to_latex(**kwargs)
    return styler.to_latex(**kwargs)


class FigureReporter(Reportable):
    """A matplotlib figure, saved as an image beside the report.

    ``record.report(FigureReporter(fig, name="loss"))``

    The figure is drawn into memory at once, so you may change or close it
    afterwards, and a stage reused from the cache reports it without
    matplotlib having to unpickle the figure. Under ``%matplotlib inline`` (a
    notebook) a figure made with ``pyplot`` is closed in pyplot once drawn: left
    open, the notebook showed it again at the end of the cell, besides the
    record's display. The figure object stays usable (``display(fig)``); in
    scripts and other backends nothing is closed for you.

    Args:
        fig: a ``matplotlib.figure.Figure`` (anything with ``savefig``).
        kwargs: passed to ``fig.savefig()``; ``format`` is ``"png"`` unless
            given (``"svg"`` works too; a ``"pdf"`` or ``"eps"`` file is linked). Extra keyword arguments are added to
            it (Curifactory's way of passing them).
    """

    def __init__(
        self,
        fig: Any,
        name: str | None = None,
        group: str | None = None,
        kwargs: dict | None = None,
        **savefig_kwargs: Any,
    ):
        super().__init__(name=name, group=group)
        if not callable(getattr(fig, "savefig", None)):
            raise TypeError(_not_a_figure(fig))
        self.kwargs = {"format": "png", "bbox_inches": "tight", **(kwargs or {}), **savefig_kwargs}
        self.format = str(self.kwargs["format"]).lower()
        buffer = io.BytesIO()
        fig.savefig(buffer, **self.kwargs)
        self.data = buffer.getvalue()
        _close_if_inline(fig)

    def render(self) -> None:
        Path(self.path, self.file_name(self.format)).write_bytes(self.data)

    def html(self) -> str:
        url = self.file_url(self.file_name(self.format))
        if f".{self.format}" not in _IMAGE_TYPES:  # a PDF, EPS, ...: no browser shows it inline
            return f'<p class="note"><a href="{url}">{_html.escape(self.file_name(self.format))}</a></p>'
        alt = _html.escape(str(self.name or "figure"), quote=True)
        return f'<img src="{url}" alt="{alt}" loading="lazy" class="figure">'


class LinePlotReporter(FigureReporter):
    """Line plots of a series, or of several series in a dict, as a figure.

    ::

        record.report(LinePlotReporter({"train": train_loss, "test": test_loss}, name="loss"))
        record.report(LinePlotReporter(y=accuracy, x=epochs, name="accuracy"))

    Args:
        y: one sequence of values, or a dict of label -> sequence (one line
            each, with a legend).
        x: the x values: one sequence, or (with a dict ``y``) a dict with the
            same keys; default 0, 1, 2, ...
        plot_kwargs: passed to each ``Axes.plot()`` call.
        savefig_kwargs: passed to ``Figure.savefig()``.
        title, xlabel, ylabel: text for the axes.

    Needs matplotlib (``pip install 'assay[plots]'``); it draws without a
    display and never touches ``pyplot``'s current figure.
    """

    def __init__(
        self,
        y: Any,
        x: Any = None,
        name: str | None = None,
        group: str | None = None,
        plot_kwargs: dict | None = None,
        savefig_kwargs: dict | None = None,
        title: str | None = None,
        xlabel: str | None = None,
        ylabel: str | None = None,
    ):
        self.y = y
        self.x = x
        self.plot_kwargs = dict(plot_kwargs or {})
        self.savefig_kwargs = dict(savefig_kwargs or {})
        figure = _new_figure()
        axes = figure.subplots()
        if isinstance(y, dict):
            handles, labels = [], []
            for label, values in y.items():
                drawn = _plot(axes, _x_of(x, label), values, self.plot_kwargs, name, label)
                handles += drawn[:1]
                labels += [str(label)] if drawn else []
            if handles:  # labels given as they are: "_val" is no hidden line here
                axes.legend(handles, labels)
        else:
            _plot(axes, x, y, self.plot_kwargs, name)
        axes.grid(True, alpha=0.3)
        for setter, text in ((axes.set_title, title), (axes.set_xlabel, xlabel)):
            if text:
                setter(text)
        if ylabel:
            axes.set_ylabel(ylabel)
        super().__init__(figure, name=name, group=group, kwargs=self.savefig_kwargs)
        self.y = self.x = None  # drawn: keep only the image


def _plot(
    axes: Any, x: Any, y: Any, plot_kwargs: dict, name: str | None, label: Any = None
) -> list:
    """Draw one line of a :class:`LinePlotReporter` (``x`` ``None``: 0, 1, 2, ...) and
    return the artists ``Axes.plot`` made; x and y of different lengths get a message
    naming the reportable and the line."""
    sizes = [_length(x), _length(y)]
    if x is not None and None not in sizes and sizes[0] != sizes[1]:
        who = "LinePlotReporter" + ("" if name is None else f" {name!r}")
        line = "" if label is None else f", line {label!r}"
        raise ValueError(
            f"{who}{line}: {sizes[1]} y values but {sizes[0]} x values. "
            "Give x as many values as y (or no x, to plot y over 0, 1, 2, ...)."
        )
    args = (y,) if x is None else (x, y)
    if label is not None:
        plot_kwargs = {**plot_kwargs, "label": str(label)}
    return axes.plot(*args, **plot_kwargs)


def _length(values: Any) -> int | None:
    """How many points ``values`` holds along its first axis, if it says."""
    try:
        return len(values)
    except TypeError:
        return None


def _x_of(x: Any, label: Any) -> Any:
    """The x values of the line ``label``: ``x`` itself, or its entry when ``x`` is a dict."""
    if not isinstance(x, dict):
        return x
    if label not in x:
        raise ValueError(
            f"LinePlotReporter: x has no values for the line {label!r} (its keys: "
            f"{', '.join(map(repr, x))}). Give x the same keys as y, or one sequence for "
            "every line."
        )
    return x[label]


def _not_a_figure(value: Any) -> str:
    """What ``FigureReporter(value)`` says of a value without ``savefig``."""
    if callable(getattr(getattr(value, "figure", None), "savefig", None)):
        hint = "its figure: FigureReporter(ax.figure)"  # matplotlib Axes
    elif callable(getattr(value, "write_image", None)):  # plotly
        hint = "an image of it: fig.write_image('plot.png'), then ImageReporter('plot.png')"
    else:
        hint = "a matplotlib Figure (fig, ax = plt.subplots())"
    return (
        f"FigureReporter draws a figure with savefig(), not a {type(value).__name__}: pass {hint}."
    )


def _close_if_inline(fig: Any) -> None:
    """Close ``fig`` in pyplot when the backend is a notebook's inline one, which shows
    every figure pyplot holds at the end of the cell: the report has its picture."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    manager = getattr(getattr(fig, "canvas", None), "manager", None)
    if pyplot is None or manager is None or not pyplot.fignum_exists(manager.num):
        return  # not pyplot's (a Figure() made directly, as LinePlotReporter's)
    if "inline" in str(pyplot.get_backend()).lower():
        pyplot.close(fig)


def _new_figure() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "LinePlotReporter draws with matplotlib, which is not installed. "
            "Install it with: pip install 'assay[plots]'"
        ) from exc
    return Figure(figsize=(6.4, 4.0), dpi=100, facecolor="white")


_IMAGE_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp", ".avif"}


class ImageReporter(Reportable):
    """An image file (PNG, JPEG, SVG, ...), copied beside the report.

    ``record.report(ImageReporter(record.get_path("confusion.png"), name="confusion"))``

    The file is read at once, so it may be deleted afterwards and a reused
    stage still reports it.

    Args:
        path: the image file (``image_path=`` as in Curifactory works too).
        alt: text shown when the image cannot be (default: the name).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        name: str | None = None,
        group: str | None = None,
        alt: str | None = None,
        *,
        image_path: str | os.PathLike | None = None,
    ):
        super().__init__(name=name, group=group)
        if (path is None) == (image_path is None):
            raise TypeError("ImageReporter takes the image file once: ImageReporter(path).")
        source = Path(path if path is not None else image_path)
        self.extension = source.suffix.lower() or ".png"
        if self.extension not in _IMAGE_TYPES:
            raise ValueError(
                f"ImageReporter: {source} does not look like an image (known types: "
                f"{', '.join(sorted(_IMAGE_TYPES))}). Use FigureReporter for a matplotlib figure."
            )
        self.source = str(source)
        try:
            self.data = source.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"ImageReporter: there is no image file at {source} (from {os.getcwd()}). "
                "The file is read when the reporter is made: write the image first."
            ) from None
        self.alt = alt

    @property
    def image_path(self) -> str:
        """The image file reported (Curifactory's name for :attr:`source`)."""
        return self.source

    def render(self) -> None:
        Path(self.path, self.file_name(self.extension)).write_bytes(self.data)

    def html(self) -> str:
        alt = _html.escape(str(self.alt or self.name or Path(self.source).name), quote=True)
        return (
            f'<img src="{self.file_url(self.file_name(self.extension))}" alt="{alt}" '
            'loading="lazy" class="figure">'
        )


__getattr__ = names_curifactory_has(__name__)  # says what to use instead
