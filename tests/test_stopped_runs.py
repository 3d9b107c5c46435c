"""What a run that stops records about the stage runs it abandoned.

A stage that fails in a ``--parallel`` run stops the run while other stage runs
execute in workers or wait for one; Ctrl-C stops them all. Only the stage that
raised failed: the others were stopped, and ``assay show``, the run record
(``logs/RUN_ID.json``), the log's closing line and the report (written at the
end of the run, or rebuilt from the run store) say so, and the report's
headline names the stage that raised. The runs use the ``stopping`` experiment
of ``tests/resources/projects/basic`` (see its docstring) and ``flaky``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assay.store import RunStore
from conftest import run_cli

# -- helpers ------------------------------------------------------------------------------


def stage_rows(root: Path) -> dict[str, tuple[str, bool]]:
    """``{"stage:set": (status, whether it has a start time)}`` of the latest run."""
    with RunStore(root / "assay.db") as store:
        info = store.get_run("latest")
        return {
            f"{s.stage}:{s.param_set}": (s.status, s.started is not None)
            for s in store.stages(info.id)
        }


def latest_id(root: Path) -> str:
    with RunStore(root / "assay.db") as store:
        return store.get_run("latest").id


def record_stages(root: Path) -> dict[str, str]:
    """``{"stage:set": status}`` from the run record, ``logs/RUN_ID.json``."""
    record = json.loads((root / "logs" / f"{latest_id(root)}.json").read_text())
    return {f"{s['stage']}:{s['param_set']}": s["status"] for s in record["stages"]}


def shown_stages(root: Path) -> dict[str, str]:
    """``{"stage:set": status}`` as ``assay show latest`` prints them."""
    result = run_cli("show", "latest", cwd=root)
    assert result.code == 0, result
    table = result.output.split(" stages ", 1)[1]
    shown = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 4 and cells[0] != "parameter set":
            shown[f"{cells[1]}:{cells[0]}"] = cells[2]
    return shown


def closing_line(root: Path) -> str:
    """The log's last line: ``Run N failed: 3 executed, ...``."""
    return (root / "logs" / f"{latest_id(root)}.log").read_text().strip().splitlines()[-1]


def headline(root: Path) -> str:
    """The report's failure headline (``The run failed in stage work for b``), as text."""
    html = (root / "reports" / latest_id(root) / "index.html").read_text()
    match = re.search(r'<section class="failure" id="failure">\s*<h2>(.*?)</h2>', html, re.S)
    assert match, "the report has no failure section"
    return re.sub(r"<[^>]+>", "", match.group(1))


def dag_nodes(root: Path) -> dict[str, tuple[str, str]]:
    """``{"stage:set": (status, tooltip)}`` of the report's DAG picture."""
    html = (root / "reports" / latest_id(root) / "index.html").read_text()
    found = re.findall(r'<g class="stage status-([a-z-]+)"><title>([^<]*)</title>', html)
    return {
        "{}:{}".format(*tip.split("\n", 1)[0].split(" \u2014 ")): (status, tip)
        for status, tip in found
    }


def rebuild_report_from_the_store(root: Path) -> None:
    """Drop the run's ``run.json`` and let ``assay report`` make the page from the run store."""
    (root / "reports" / latest_id(root) / "run.json").unlink()
    result = run_cli("report", cwd=root)
    assert result.code == 0, result


def start_run(root: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", TERM="dumb")
    return subprocess.Popen(
        [sys.executable, "-m", "assay", "run", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(proc: subprocess.Popen, *files: Path) -> None:
    deadline = time.monotonic() + 60
    while not all(f.exists() for f in files):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)


# -- a stage fails ------------------------------------------------------------------------

NEVER_STARTED = {"finish:a", "finish:b", "finish:c", "tally:aggregate"}


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(["--parallel", "2"], id="process"),
        pytest.param(["--executor", "dask", "--parallel", "2"], id="dask", marks=pytest.mark.slow),
    ],
)
def test_a_failed_parallel_run_records_the_stages_it_abandoned_as_interrupted(
    tmp_project: Path, options: list[str]
):
    """They were recorded as failed, and the report's headline named the first of them."""
    (tmp_project / "fail-b.flag").touch()

    result = run_cli("run", "stopping", *options, cwd=tmp_project, timeout=180)

    assert result.code == 1, result
    assert "Stage 'work' failed for parameter set 'b'" in result.text, result
    rows = stage_rows(tmp_project)
    assert rows["work:b"] == ("failed", True)
    # a's was executing in a worker, c's waiting for one: stopped, when they had started
    assert rows["work:a"] == rows["work:c"] == ("interrupted", True), rows
    assert {rows[s] for s in NEVER_STARTED} == {("skipped", False)}, rows
    assert record_stages(tmp_project) == {s: status for s, (status, _) in rows.items()}
    shown = shown_stages(tmp_project)
    assert [s for s, status in shown.items() if status == "failed"] == ["work:b"], shown
    assert shown["work:a"] == shown["work:c"] == "interrupted", shown
    assert {shown[s] for s in NEVER_STARTED} == {"skipped"}, shown
    assert "1 failed" in closing_line(tmp_project)
    assert "2 interrupted" in closing_line(tmp_project)

    for rebuilt in (False, True):
        if rebuilt:
            rebuild_report_from_the_store(tmp_project)
        assert headline(tmp_project) == "The run failed in stage work for b", rebuilt
        nodes = dag_nodes(tmp_project)
        assert [s for s, (status, _) in nodes.items() if status == "failed"] == ["work:b"]
        assert nodes["work:a"][0] == nodes["work:c"][0] == "interrupted", (rebuilt, nodes)
        assert "refuses" in nodes["work:b"][1]
        assert "refuses" not in nodes["work:a"][1] + nodes["work:c"][1], rebuilt  # b's error


def test_a_failed_serial_run_records_the_stages_after_it_as_skipped(tmp_project: Path):
    (tmp_project / "fail-b.flag").touch()

    result = run_cli("run", "stopping", cwd=tmp_project)

    assert result.code == 1, result
    rows = stage_rows(tmp_project)
    assert rows["work:a"] == rows["finish:a"] == ("executed", True)
    assert rows["work:b"] == ("failed", True)
    later = {"finish:b", "work:c", "finish:c", "tally:aggregate"}
    assert {rows[s] for s in later} == {("skipped", False)}, rows
    shown = shown_stages(tmp_project)
    assert {shown[s] for s in later} == {"skipped"} and shown["work:b"] == "failed", shown
    assert headline(tmp_project) == "The run failed in stage work for b"


# -- Ctrl-C -------------------------------------------------------------------------------


def test_ctrl_c_in_a_parallel_run_records_the_stages_it_stopped_as_interrupted(
    tmp_project: Path,
):
    """They were recorded as failed, although no stage failed."""
    proc = start_run(tmp_project, "stopping", "--parallel", "2")
    try:
        wait_for(proc, tmp_project / "working-a.txt", tmp_project / "working-b.txt")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert proc.returncode == 130, stdout + stderr
    rows = stage_rows(tmp_project)
    # a's and b's were executing in the workers; c's, waiting for one, never started
    assert rows["work:a"] == rows["work:b"] == ("interrupted", True), rows
    assert rows["work:c"] == ("interrupted", False), rows
    assert {rows[s] for s in NEVER_STARTED} == {("skipped", False)}, rows
    assert "failed" not in record_stages(tmp_project).values()
    shown = shown_stages(tmp_project)
    assert {shown[s] for s in ("work:a", "work:b", "work:c")} == {"interrupted"}, shown
    assert "failed" not in shown.values()
    assert "3 interrupted" in closing_line(tmp_project)
    assert "failed" not in closing_line(tmp_project)

    for rebuilt in (False, True):
        if rebuilt:
            rebuild_report_from_the_store(tmp_project)
        assert headline(tmp_project) == "The run was interrupted", rebuilt  # 3 stages: none named
        statuses = [status for status, _ in dag_nodes(tmp_project).values()]
        assert statuses.count("interrupted") == 3 and "failed" not in statuses, rebuilt


def test_ctrl_c_in_a_serial_run_records_the_stage_it_stopped_as_interrupted(tmp_project: Path):
    """It was recorded as failed, and the log's closing line counted it as failed."""
    (tmp_project / "interrupt.flag").touch()  # flaky's `second` raises KeyboardInterrupt

    result = run_cli("run", "flaky", cwd=tmp_project)

    assert result.code == 130, result
    rows = stage_rows(tmp_project)
    assert rows["first:a"] == ("executed", True)
    assert rows["second:a"] == ("interrupted", True), rows
    assert "failed" not in record_stages(tmp_project).values()
    shown = shown_stages(tmp_project)
    assert shown["second:a"] == "interrupted" and "failed" not in shown.values(), shown
    assert "1 interrupted" in closing_line(tmp_project)
    assert "failed" not in closing_line(tmp_project)
    for rebuilt in (False, True):
        if rebuilt:
            rebuild_report_from_the_store(tmp_project)
        assert headline(tmp_project) == "The run was interrupted in stage second for a", rebuilt
