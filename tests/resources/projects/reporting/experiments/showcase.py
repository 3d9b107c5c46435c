"""Every built-in reportable, on two parameter sets and an aggregate.

    make -> tabulate -> draw        (per parameter set)
    totals(every record's table)    (aggregate)

The reportables' names, groups and contents repeat the parameter set's
``label``, so a parameter file with hostile labels (params/evil.py) reaches
every place a report shows user text.
"""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

import assay
from assay.caching import JsonCacher, PandasCsvCacher
from assay.reporting import (
    DFReporter,
    FigureReporter,
    HTMLReporter,
    ImageReporter,
    JsonReporter,
    LatexTableReporter,
    LinePlotReporter,
)

MAGENTA = "#ff00ff"
"""The line plot's color: the browser test looks for it in a screenshot."""


@dataclass
class Params(assay.ExperimentParameters):
    scale: float = 1.0
    label: str = "plain"
    n: int = 5


@assay.stage(outputs=["series"], cachers=[JsonCacher])
def make(record):
    p = record.params
    xs = list(range(p.n))
    ys = [p.scale * x * x for x in xs]
    record.report(JsonReporter({"label": p.label, "total": sum(ys)}, name="summary"))
    record.report(
        LinePlotReporter(
            {f"squares {p.label}": ys},
            x={f"squares {p.label}": xs},
            name="curve",
            title=p.label,
            plot_kwargs={"color": MAGENTA, "linewidth": 5},
        )
    )
    return {"x": xs, "y": ys}


@assay.stage(inputs=["series"], outputs=["table"], cachers=[PandasCsvCacher])
def tabulate(record, series):
    table = pd.DataFrame({"x": series["x"], "y": series["y"], "label": record.params.label})
    record.report(DFReporter(table, name=f"table {record.params.label}", group="tables"))
    record.report(LatexTableReporter(table, name="latex", group="tables"))
    return table


@assay.stage(inputs=["table"], outputs=["drawn"], cachers=[JsonCacher])
def draw(record, table):
    figure = Figure(figsize=(4, 3))
    figure.subplots().bar(table["x"], table["y"], color="#00a0a0")
    record.report(FigureReporter(figure, name="bars", group=record.params.label))
    folder = Path(record.manager.config.root, "scratch")
    folder.mkdir(exist_ok=True)
    image = folder / f"bars_{record.params.name}.png"
    figure.savefig(image)
    record.report(ImageReporter(image, name="image", group=record.params.label))
    record.report(HTMLReporter('<p class="trusted-html">written by the stage</p>', name="raw"))
    return {"rows": len(table)}


@assay.aggregate(inputs=["table"], outputs=["totals"], cachers=[JsonCacher])
def totals(record, records, table):
    rows = [{"set": r.params.name, "total": float(t["y"].sum())} for r, t in table.items()]
    record.report(DFReporter(pd.DataFrame(rows), name="totals"))
    return {row["set"]: row["total"] for row in rows}


def get_params():
    return [Params(name="one", scale=1.0), Params(name="two", scale=2.0, label="doubled")]


def run(param_sets, manager):
    for params in param_sets:
        draw(tabulate(make(assay.Record(manager, params))))
    totals(assay.Record(manager, None))
