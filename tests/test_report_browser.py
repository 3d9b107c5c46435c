"""A real report opened in headless Chromium: the DAG and a figure must be visible.

Needs Debian's ``chromium`` (``.ci/run`` installs it). Without it the test is
skipped on a developer's machine, but fails under CI, where it must run.

Two checks, on a run of the ``showcase`` experiment with one parameter set:

- the page's DOM after load, from a copy of the page with a small probe
  script appended (the report itself has no script): the DAG's SVG has its
  stage boxes and a real size on screen, and the figures' images loaded;
- a screenshot of the unmodified page: the DAG's "executed" color and the line
  plot's magenta are really painted.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

import assay
from conftest import copy_project, find_chromium

pytestmark = pytest.mark.slow

PROBE = """
<script>
window.addEventListener("load", () => {
  const svg = document.querySelector("#dag svg");
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const images = [...document.querySelectorAll("img.figure")].map((img) => ({
    src: img.getAttribute("src"),
    complete: img.complete,
    width: img.naturalWidth,
    shown: img.getBoundingClientRect().width,
  }));
  const result = {
    svgWidth: box.width,
    svgHeight: box.height,
    stages: svg ? svg.querySelectorAll("g.stage").length : 0,
    images: images,
  };
  document.body.setAttribute("data-probe", JSON.stringify(result));
});
</script>
"""


def browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        find_chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--window-size=1400,3200",
        "--virtual-time-budget=10000",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_dag_and_a_figure_are_visible_in_chromium(tmp_path: Path):
    root = copy_project("reporting", tmp_path)
    manager = assay.run_experiment("showcase", [], names=["one"], project_root=root)
    page = manager.config.reports_dir / manager.run_id / "index.html"

    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dumped = browse(probe, tmp_path / "profile-dom", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr
    found = re.search(r'data-probe="([^"]*)"', dumped.stdout)
    assert found, f"the probe did not run; Chromium printed:\n{dumped.stderr[-2000:]}"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["stages"] == 4  # make, tabulate, draw, totals
    assert result["svgWidth"] > 300 and result["svgHeight"] > 150
    figures = {Path(i["src"]).stem: i for i in result["images"]}
    assert set(figures) == {"curve", "bars", "image"}
    for image in figures.values():
        assert image["complete"] and image["width"] > 100 and image["shown"] > 100, image

    screenshot = tmp_path / "report.png"
    shot = browse(page, tmp_path / "profile-shot", f"--screenshot={screenshot}")
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr

    from matplotlib.image import imread

    pixels = (imread(screenshot)[:, :, :3] * 255).round().astype(int)
    assert len({tuple(p) for p in pixels[::7, ::7].reshape(-1, 3)}) > 50  # not a blank page

    def count(rgb: tuple[int, int, int], tolerance: int = 6) -> int:
        return int((abs(pixels - rgb).max(axis=2) <= tolerance).sum())

    assert count((0xDC, 0xF3, 0xD8)) > 2000  # the DAG's "executed" boxes
    assert count((0xFF, 0x00, 0xFF), tolerance=40) > 300  # the line plot's magenta line
