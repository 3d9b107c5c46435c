"""The DAG picture: layered layout and SVG drawn by assay itself.

Plain records in, SVG out. The layout is checked geometrically (no two boxes
overlap, pills sit in their stage, stages in their record's band, the picture
stays a readable size for 20 parameter sets x 8 stages), and the SVG is
parsed as XML and inspected.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from assay.report.dag import STATUS_STYLES, depths, layout, render_svg

SVG = "{http://www.w3.org/2000/svg}"


def node(index, stage, record, inputs=(), outputs=("out",), status="executed", **extra):
    return {
        "index": index,
        "stage": stage,
        "record": record,
        "status": status,
        "reason": "",
        "key": f"{index:032x}",
        "duration_s": 0.25,
        "error": None,
        "aggregate": False,
        "joins": [],
        "deps": sorted({i for i, _ in inputs}),
        "inputs": [list(i) for i in inputs],
        "outputs": [
            {
                "name": name,
                "cacher": "PickleCacher",
                "path": f"data/cache/objects/{index:02x}/{name}.pkl",
                "size": 2048,
                "cached": True,
                "action": "computed",
            }
            for name in outputs
        ],
        **extra,
    }


def grid_dag(n_sets: int = 20, n_stages: int = 8) -> tuple[list[dict], list[dict]]:
    """``n_sets`` records, each a chain of ``n_stages`` stages, then one aggregate."""
    records, nodes = [], []
    statuses = ["executed", "cached", "unneeded", "failed", "not run", "interrupted"]
    for r in range(n_sets):
        records.append({"id": r, "label": f"set-{r:02d}-with-a-longish-name", "aggregate": False})
        for s in range(n_stages):
            index = len(nodes)
            inputs = [(index - 1, f"output_{s - 1}")] if s else []
            status = statuses[(r + s) % len(statuses)]
            nodes.append(node(index, f"stage_number_{s}", r, inputs, [f"output_{s}"], status))
    records.append(
        {"id": n_sets, "label": "aggregate", "aggregate": True, "joins": list(range(n_sets))}
    )
    last = [r * n_stages + n_stages - 1 for r in range(n_sets)]
    nodes.append(
        node(
            len(nodes),
            "compare_everything",
            n_sets,
            [(i, f"output_{n_stages - 1}") for i in last],
            ["table"],
            aggregate=True,
            joins=list(range(n_sets)),
        )
    )
    return records, nodes


def assert_no_overlaps(lay) -> None:
    for (a, box_a), (b, box_b) in itertools.combinations(lay.nodes.items(), 2):
        assert not box_a.overlaps(box_b), f"stage runs {a} and {b} overlap"
    for (a, band_a), (b, band_b) in itertools.combinations(lay.bands.items(), 2):
        assert not band_a.overlaps(band_b), f"bands {a} and {b} overlap"


def test_20_parameter_sets_by_8_stages_stay_readable():
    records, nodes = grid_dag(20, 8)
    lay = layout(records, nodes)
    assert_no_overlaps(lay)
    by_index = {n["index"]: n for n in nodes}
    for index, box in lay.nodes.items():
        band = lay.bands[by_index[index]["record"]]
        assert band.x <= box.x and box.right <= band.right, index
        assert band.y <= box.y and box.bottom <= band.bottom, index
        assert box.w >= 110 and box.h >= 24  # big enough to read
    for (index, _name), pill in lay.pills.items():
        box = lay.nodes[index]
        assert box.x < pill.x and pill.right < box.right
        assert box.y < pill.y and pill.bottom <= box.bottom
    # One column per stage plus the aggregate's, one band per set: a picture that
    # fits a screen's width and scrolls down by about one line per parameter set.
    assert len(lay.columns) == 9
    assert lay.width <= 2200
    assert lay.height <= 21 * 110
    svg = render_svg(records, nodes)
    assert len(svg) < 400_000
    root = ET.fromstring(svg)
    groups = root.iter(f"{SVG}g")
    stages = [g for g in groups if (g.get("class") or "").startswith("stage")]
    assert len(stages) == 161
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert all(len(t) <= 40 for t in texts if t.startswith("stage_number"))


def test_columns_follow_the_data_flow_and_parallel_stages_stack():
    # load -> double, square -> combine (a diamond), on one record
    nodes = [
        node(0, "load", 0, outputs=["data"]),
        node(1, "double", 0, [(0, "data")], ["doubled"]),
        node(2, "square", 0, [(0, "data")], ["squared"]),
        node(3, "combine", 0, [(1, "doubled"), (2, "squared")], ["combined"]),
    ]
    records = [{"id": 0, "label": "a", "aggregate": False}]
    assert depths(nodes) == {0: 0, 1: 1, 2: 1, 3: 2}
    lay = layout(records, nodes)
    assert_no_overlaps(lay)
    assert lay.nodes[1].x == lay.nodes[2].x and lay.nodes[1].y < lay.nodes[2].y
    assert lay.nodes[0].right < lay.nodes[1].x < lay.nodes[3].x


def test_an_edge_that_skips_columns_runs_below_the_stages_it_passes():
    nodes = [
        node(0, "split", 0, outputs=["train", "test"]),
        node(1, "fit", 0, [(0, "train")], ["model"]),
        node(2, "score", 0, [(1, "model"), (0, "test")], ["scores"]),
    ]
    records = [{"id": 0, "label": "a", "aggregate": False}]
    lay = layout(records, nodes)
    root = ET.fromstring(render_svg(records, nodes))
    paths = [p.get("d") for p in root.iter(f"{SVG}path") if p.get("marker-end")]
    assert len(paths) == 3
    long_edges = [d for d in paths if " L" in d]
    assert len(long_edges) == 1  # test -> score
    lane = float(long_edges[0].split(" L")[1].split(",")[1].split()[0])
    assert lane > lay.nodes[1].bottom  # below "fit", inside the band
    assert lane < lay.bands[0].bottom


def test_statuses_look_different_and_have_a_legend():
    statuses = ["executed", "cached", "unneeded", "failed", "interrupted", "not run"]
    nodes = [node(i, f"s{i}", 0, status=s) for i, s in enumerate(statuses)]
    svg = render_svg([{"id": 0, "label": "a", "aggregate": False}], nodes)
    root = ET.fromstring(svg)
    fills = {}
    for g in root.iter(f"{SVG}g"):
        cls = g.get("class") or ""
        if cls.startswith("stage "):
            fills[cls.split("status-")[1]] = g.find(f"{SVG}rect").get("fill")
    assert len(set(fills.values())) == len(statuses)
    assert fills["executed"] == STATUS_STYLES["executed"]["fill"]
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend")
    labels = [t.text for t in legend.iter(f"{SVG}text")]
    for status in statuses:
        assert STATUS_STYLES[status]["label"] in labels


def test_tooltips_hold_cache_paths_keys_and_full_names():
    long_name = "a_stage_with_a_name_far_too_long_to_fit_in_its_box_at_all"
    nodes = [node(0, long_name, 0, outputs=["model"], status="failed", error="Boom: bad")]
    svg = render_svg([{"id": 0, "label": "set<1>", "aggregate": False}], nodes)
    root = ET.fromstring(svg)
    titles = [t.text for t in root.iter(f"{SVG}title")]
    stage_title = next(t for t in titles if t.startswith(long_name))
    assert "set<1>" in stage_title and "failed" in stage_title
    assert f"key: {0:032x}" in stage_title and "error: Boom: bad" in stage_title
    artifact_title = next(t for t in titles if t.startswith("model"))
    assert "data/cache/objects/00/model.pkl" in artifact_title and "2.0 kB" in artifact_title
    shown = [t.text for t in root.iter(f"{SVG}text") if (t.text or "").startswith("a_stage")]
    assert shown and shown[0].endswith("\u2026") and len(shown[0]) < len(long_name)
    assert "set&lt;1&gt;" in svg


def test_many_outputs_are_summarized():
    nodes = [node(0, "many", 0, outputs=[f"o{i}" for i in range(10)])]
    lay = layout([{"id": 0, "label": "a", "aggregate": False}], nodes)
    assert len(lay.pills) == 5 and lay.hidden == {0: 5}
    assert "+5 more" in render_svg([{"id": 0, "label": "a", "aggregate": False}], nodes)


@pytest.mark.parametrize("nodes", [[], [node(0, "alone", 0, outputs=())]])
def test_small_and_empty_dags_render(nodes):
    svg = render_svg([{"id": 0, "label": "a", "aggregate": False}], nodes)
    root = ET.fromstring(svg)
    assert float(root.get("width")) > 100 and float(root.get("height")) > 40
