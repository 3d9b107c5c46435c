"""User text that tries to inject HTML everywhere a report shows it.

The payload goes into parameter-set names and values, a stage's name, the
names and groups of reportables, JSON content, DataFrame cells, column and
index labels, a LaTeX table, an image's file name, and (with ``--set
explode=True``) a stage's error message. Run notes come from ``--notes``.
"""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import assay
from assay.caching import JsonCacher
from assay.reporting import DFReporter, ImageReporter, JsonReporter, LatexTableReporter

PAYLOAD = "<script>alert('x')</script><img src=x onerror=alert(1)>"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000000030101004a1a9e0d0000000049454e44ae426082"
)
"""A 1x1 PNG."""


@dataclass
class Params(assay.ExperimentParameters):
    label: str = PAYLOAD
    explode: bool = False


def shout(record):
    p = record.params
    if p.explode:
        raise ValueError(f"exploded on {p.label}")
    record.report(JsonReporter({"label": p.label, PAYLOAD: [PAYLOAD]}, name=p.label, group=p.label))
    frame = pd.DataFrame({PAYLOAD: [p.label, 1.5]}, index=[PAYLOAD, "x"])
    record.report(DFReporter(frame, name=f"table {PAYLOAD}", group=PAYLOAD))
    record.report(LatexTableReporter(frame, name=f"latex {PAYLOAD}"))
    image = Path(record.get_path(f"{PAYLOAD[:8]}.png"))  # "<script>.png"
    image.write_bytes(PNG)
    record.report(ImageReporter(image, name=f"image {PAYLOAD}"))
    return {"label": p.label}


shout.__name__ = shout.__qualname__ = f"shout{PAYLOAD}"
shout = assay.stage(outputs=["said"], cachers=[JsonCacher])(shout)


@assay.aggregate(inputs=["said"], outputs=["all_said"], cachers=[JsonCacher])
def gather(record, records, said):
    record.report(JsonReporter({r.params.name: s for r, s in said.items()}, name=PAYLOAD))
    return {r.params.name: s["label"] for r, s in said.items()}


def get_params():
    return [Params(name=f"evil{PAYLOAD}"), Params(name=f"second{PAYLOAD}", label="plain")]


def run(param_sets, manager):
    for params in param_sets:
        shout(assay.Record(manager, params))
    gather(assay.Record(manager, None))
