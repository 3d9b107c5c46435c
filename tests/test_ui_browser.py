"""The dashboard for real: ``assay ui`` as a process, driven by headless Chromium.

Debian's ``chromium`` through Playwright's Python package (no browser of
Playwright's own is downloaded). Without Chromium the browser tests are
skipped on a developer's machine and fail under CI, where they must run.

The walk goes runs -> compare -> run -> lineage -> sweep as a researcher
clicks through it, checks what each page shows, and that no script from the
hostile parameter-set names ran and no Content-Security-Policy violation
happened. A running run is watched until it ends, without reloading by hand.

Screenshots of each view are taken; with ``UI_SCREENSHOTS=docs/images`` they
are also copied there (that is how the documentation's pictures are made).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ui_helpers import SECRET, Server, make_project, subprocess_env

pytestmark = pytest.mark.slow


WATCH = """
window.__problems = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__problems.push("CSP " + e.violatedDirective + " " + e.blockedURI);
});
window.addEventListener("error", (e) => { window.__problems.push("error " + e.message); });
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("ui-browser"))


@pytest.fixture(scope="module")
def server(project: Path):
    with Server(project) as running:
        yield running


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script(WATCH)
    tab = context.new_page()
    tab.set_default_timeout(60_000)  # a loaded CI machine is slow, not wrong
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.errors = errors
    yield tab
    context.close()


def clean(page) -> None:
    """Nothing injected ran, no policy was violated, no script failed."""
    assert page.evaluate("() => window.__pwned") is None
    assert page.evaluate("() => window.__problems") == []
    assert page.errors == []


def screenshot(page, tmp_path: Path, name: str, full_page: bool = True, height: int = 0) -> None:
    path = tmp_path / f"ui-{name}.png"
    clip = {"x": 0, "y": 0, "width": 1440, "height": height} if height else None
    page.screenshot(path=str(path), full_page=full_page, clip=clip)
    assert path.stat().st_size > 10_000  # a real picture, not a blank page
    target = os.environ.get("UI_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


# -- the walk ------------------------------------------------------------------------------


def test_runs_compare_run_lineage_and_sweep_in_chromium(page, server, tmp_path):
    page.goto(server.url)
    assert page.url.endswith("/runs")
    rows = page.locator("tr.run-row")
    assert rows.count() == 3
    assert "<script>window.__pwned=1</script>" in rows.nth(0).inner_text()  # shown as text
    assert "*dirty" in rows.nth(1).inner_text() and "longer training" in rows.nth(1).inner_text()
    assert page.locator("th.metric").all_inner_texts()[:2] == ["accuracy", "f1"]
    clean(page)
    screenshot(page, tmp_path, "runs", full_page=False)

    page.check('input[name="run"][value="1"]')
    page.check('input[name="run"][value="2"]')
    page.click("#compare-runs")
    page.wait_for_url("**/compare?run=2&run=1")
    page.wait_for_selector('#compare-plots[data-drawn="1"]')
    assert page.locator(".compare-plot .scatterlayer .trace").count() == 8  # 4 sets x 2 runs
    differing = page.locator("#params tr.differs").all_inner_texts()
    assert any("epochs" in row and "6" in row and "4" in row for row in differing)
    assert page.locator("#artifacts tr.differs").count() > 0
    clean(page)
    screenshot(page, tmp_path, "compare")

    assert page.locator("table.compare thead th").nth(2).inner_text() == "run 1"  # oldest first
    page.click("text=run 2")
    page.wait_for_selector("#dag svg")
    assert page.locator("#dag svg g.stage").count() == 17
    assert page.locator("#dag svg").bounding_box()["width"] > 300
    assert "accuracy" in page.locator("#metrics").inner_text()
    assert page.locator("#reportables table.metrics").count() == 8  # 4 sets x (train, evaluate)
    clean(page)
    screenshot(page, tmp_path, "run", height=2300)

    row = page.locator("#artifacts tr", has_text="g-lr=0.2-model=tree").filter(has_text="figure")
    row.locator("a").click()
    page.wait_for_selector("svg.lineage-graph")
    assert page.locator("svg.lineage-graph a.artifact-node").count() == 5
    image = page.locator("img.preview-image")
    page.wait_for_function("() => document.querySelector('img.preview-image').complete")
    assert image.evaluate("(img) => img.naturalWidth") == 8
    assert "run 2" in page.locator("#producing-run").inner_text()
    clean(page)
    screenshot(page, tmp_path, "lineage")

    page.locator('svg.lineage-graph a.artifact-node[data-key$=".scores"]').click()
    page.wait_for_url("**/lineage?key=*.scores")
    assert '"accuracy": 0.85' in page.locator("#preview pre").inner_text()
    clean(page)

    page.goto(f"{server.base}/sweep?experiment=sweep&metric=accuracy&x=lr&color=model")
    page.wait_for_selector("#sweep-scatter[data-drawn]")
    page.wait_for_selector("#sweep-parallel svg.parallel")
    assert page.locator("#sweep-scatter .scatterlayer .point").count() == 10
    assert page.locator("#sweep-parallel polyline.line").count() == 10
    assert page.locator("#sweep-table tbody tr").first.inner_text().startswith("3")  # best: lr=0.3
    clean(page)
    screenshot(page, tmp_path, "sweep")

    # Values on a category axis are text: plotly drew "<b>bold</b>" in bold (and would
    # have drawn a link from an <a> tag).
    page.goto(f"{server.base}/sweep?experiment=sweep&metric=accuracy&x=model")
    page.wait_for_selector("#sweep-scatter[data-drawn]")
    ticks = page.locator("#sweep-scatter .xtick text").all_text_contents()
    assert "<b>bold</b>" in ticks, ticks
    assert page.locator("#sweep-scatter .xtick a, #sweep-scatter .xtick [style*=bold]").count() == 0
    clean(page)


def test_a_running_run_updates_live_until_it_ends(page, server, project, tmp_path):
    release = tmp_path / "release"
    env = subprocess_env() | {"WAIT_FOR": str(release)}
    run = subprocess.Popen(
        [sys.executable, "-m", "assay", "run", "sweep", "-p", "grid", "--overwrite",
         "--notes", "watched live"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        run_id = wait_for_running(server)
        page.goto(f"{server.base}/runs/{run_id}/")
        assert page.locator("#live-status").inner_text() == "running"
        page.wait_for_function(
            "() => document.getElementById('live-log').textContent.includes('waiting for')"
        )
        page.evaluate("() => { window.__same_page = true; }")
        first = page.locator("#live-elapsed").inner_text()
        page.wait_for_function(  # the panel changed by polling, not by a reload
            f"() => document.getElementById('live-elapsed').textContent !== {json.dumps(first)}"
            " && window.__same_page === true"
        )
        assert page.locator("#live-done").inner_text() == "1"  # make_data; train waits
        assert "of about 17" in page.locator("#live-total").inner_text()  # as runs 1 and 2
        assert page.locator("#live-last").inner_text().startswith("make_data")
        screenshot(page, tmp_path, "live", full_page=False)
        release.write_text("go")
        page.wait_for_selector("h1 .badge.status-completed")
        assert page.evaluate("() => window.__same_page") is None  # reloaded by itself
        assert page.locator("#live").count() == 0
        assert "0.75" in page.locator("#metrics").inner_text()  # lr=0.1, tree
        clean(page)
    finally:
        if not release.exists():
            release.write_text("go")
        output, _ = run.communicate(timeout=60)
    assert run.returncode == 0, output


def wait_for_running(server: Server) -> str:
    deadline = time.time() + 60
    while time.time() < deadline:
        with urllib.request.urlopen(
            f"{server.base}/api/runs?status=running", timeout=10
        ) as response:
            runs = json.load(response)["runs"]
        if runs:
            return runs[0]["id"]
        time.sleep(0.2)
    raise AssertionError("the run never showed up as running")


# -- the server itself ----------------------------------------------------------------------


def test_the_server_binds_locally_and_refuses_raw_traversal(server):
    assert server.url.startswith("http://127.0.0.1:") and "token" not in server.url
    host, port = server.base.removeprefix("http://").split(":")
    for raw in (
        "/static/../app.py",
        "/static/../../store.py",
        "/runs/latest/../../../secret.txt",
        "/runs/latest/../../assay.db",
        "/artifact/x/../../../../secret.txt",
        "/log/../../secret.txt",
    ):
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", raw)  # sent as written: no client-side normalising
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
        connection.close()
        assert response.status in (400, 403, 404), (raw, response.status)
        assert SECRET not in body and "import" not in body, raw
        assert "script-src 'self'" in response.getheader("content-security-policy", "")


def test_binding_elsewhere_needs_the_printed_token(project):
    with Server(project, "--host", "127.0.0.2") as elsewhere:
        output = "\n".join(elsewhere.lines)
        assert "WARNING" in output and "token:" in output
        token = output.split("token:", 1)[1].split()[0]
        assert elsewhere.url.endswith(f"?token={token}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{elsewhere.base}/api/runs")
        assert refused.value.code == 403
        refused.value.close()
        with urllib.request.urlopen(f"{elsewhere.base}/api/runs?token={token}") as response:
            assert json.load(response)["total"] >= 3


def test_a_busy_port_is_reported_plainly(server, project):
    port = server.base.rsplit(":", 1)[1]
    busy = subprocess.run(
        [sys.executable, "-m", "assay", "ui", "--project", str(project), "--port", port],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )
    assert busy.returncode == 1
    message = " ".join(busy.stderr.split())
    assert f"Cannot listen on port {port} on 127.0.0.1" in message and "--port" in message
