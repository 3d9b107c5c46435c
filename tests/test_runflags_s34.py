"""`assay run` flags as a researcher combines them (SPEC section 8), session 34.

Each test drives the real command line (``python -m assay`` in a subprocess) on a copy
of the ``basic`` test project.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import run_cli

TRACEBACK = "Traceback (most recent call last)"


def notebook_cache_lines(path: Path) -> list[str]:
    """The lines of a notebook assay wrote that say which cache it reads and re-runs with."""
    import nbformat

    notebook = nbformat.read(str(path), as_version=4)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    return [line.strip() for line in source.splitlines() if "CACHE" in line and "=" in line]


def test_the_notebook_of_a_run_with_another_cache_loads_from_that_cache(tmp_project, tmp_path):
    """`assay run --cache DIR --notebook`: the notebook loads the artifacts from DIR and
    re-runs with it, as the one `assay export notebook RUN` writes for that run does (it
    took DIR for the project's own cache and loaded from data/cache/ instead)."""
    other = tmp_path / "other-cache"
    result = run_cli("run", "diamond", "--cache", other, "--notebook", cwd=tmp_project)
    assert result.code == 0, result
    written = next((tmp_project / "data" / "runs").rglob("*.ipynb"))
    lines = notebook_cache_lines(written)
    assert any(line.startswith(f"CACHE = {str(other)!r}  # ") for line in lines), lines
    assert "cache_dir=CACHE," in lines, lines
    exported = tmp_path / "exported.ipynb"
    assert run_cli("export", "notebook", "1", "-o", exported, cwd=tmp_project).code == 0
    assert notebook_cache_lines(exported) == lines


def test_verbose_logs_every_stage_run_with_parallel_workers_too(tmp_project):
    """`assay run --verbose --parallel 2`: one line per stage run, on the console and in
    the log file, as a serial run writes (the workers' stage runs had none)."""
    serial = run_cli("run", "diamond", "--verbose", cwd=tmp_project)
    assert serial.code == 0, serial
    parallel = run_cli(
        "run", "diamond", "--verbose", "--parallel", "2", "--overwrite", cwd=tmp_project
    )
    assert parallel.code == 0, parallel

    def stage_lines(text: str) -> set[str]:
        return set(re.findall(r"DEBUG\b.*?(\w+ \[\w+\]) executed in ", text))

    expected = {"load [a]", "double [a]", "square [a]", "combine [a]", "summarize [aggregate]"}
    assert expected <= stage_lines(serial.output), serial
    assert stage_lines(parallel.output) == stage_lines(serial.output), parallel
    log_file = sorted((tmp_project / "logs").glob("diamond-0002-*.log"))[0]
    assert stage_lines(log_file.read_text()) == stage_lines(serial.output)


@pytest.mark.parametrize("command", ["run", "why", "params"])
@pytest.mark.parametrize("override", ["offset", "=3", " =3"])
def test_a_set_that_is_not_field_equals_value_is_a_usage_error(tmp_project, command, override):
    """`--set offset` (no value) is written wrong, as `--indices x` is: exit status 2, the
    usage error's message, no run recorded (it was an error of a run, exit status 1)."""
    result = run_cli(command, "diamond", "--set", override, cwd=tmp_project)
    assert result.code == 2, result
    assert "FIELD=VALUE" in result.text and TRACEBACK not in result.output, result
    assert f"assay {command} --help" in result.output, result
    assert not (tmp_project / "assay.db").exists()


def test_names_pick_sets_in_the_parameter_files_order_so_the_aggregate_is_reused(tmp_project):
    """`-n c -n a` then `-n a -n c`: the same sets, in the parameter file's order as
    Curifactory's --names keeps it, so the second run reuses the aggregate over them (it
    ran them in the typed order, and computed the aggregate over the same sets again)."""
    from assay.store import RunStore

    first = run_cli("run", "diamond", "-p", "three", "-n", "c", "-n", "a", cwd=tmp_project)
    assert first.code == 0, first
    plan = run_cli("run", "diamond", "-p", "three", "-n", "a", "-n", "c", "--dry", cwd=tmp_project)
    assert plan.code == 0, plan
    assert "0 to execute" in plan.text, plan
    with RunStore(tmp_project / "assay.db") as store:
        assert store.get_run(1).param_names == ["a", "c"]


def test_paths_are_tab_separated_and_say_what_an_unknown_path_waits_for(tmp_project):
    """`assay run --paths`: tab-separated columns (rich turned the tabs into spaces, so a
    set or folder name with a space could not be told from the next column); before any
    run, a first stage's path waits for its own first run (its key covers the parameters
    it reads), not for an upstream stage it does not have."""
    (tmp_project / "params" / "spaced.py").write_text(
        "from experiments.diamond import Params\n\n\n"
        "def get_params():\n    return [Params(name='big run', scale=3)]\n"
    )
    result = run_cli("run", "diamond", "-p", "spaced", "--paths", cwd=tmp_project)
    assert result.code == 0, result
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert all(len(row) == 5 for row in rows), result
    by_output = {tuple(row[:3]): row[3:] for row in rows}
    assert by_output[("big run", "load", "data")] == ["missing", "(unknown-until-it-first-runs)"]
    assert by_output[("big run", "double", "doubled")] == [
        "missing",
        "(unknown-until-upstream-runs)",
    ]

    assert run_cli("run", "diamond", "-p", "spaced", cwd=tmp_project).code == 0
    again = run_cli("run", "diamond", "-p", "spaced", "--paths", cwd=tmp_project)
    rows = [line.split("\t") for line in again.stdout.splitlines()]
    assert len(rows) == 5 and all(len(row) == 5 and row[3] == "cached" for row in rows), again
    assert all((tmp_project / row[4]).is_dir() for row in rows), again


def test_the_notebook_of_a_dry_cache_run_re_runs_without_writing_the_cache(tmp_project):
    """`assay run --dry-cache --notebook`: the notebook's re-run keeps --dry-cache (it wrote
    the cache the run was not to write), and it says why it has no artifacts to load."""
    import nbformat

    result = run_cli("run", "diamond", "--dry-cache", "--notebook", cwd=tmp_project)
    assert result.code == 0, result
    written = next((tmp_project / "data" / "runs").rglob("*.ipynb"))
    notebook = nbformat.read(str(written), as_version=4)
    (rerun,) = [c.source for c in notebook.cells if "assay.run_experiment(" in c.source]
    assert "dry_cache=True," in rerun, rerun
    (artifacts,) = [c.source for c in notebook.cells if c.source.startswith("## Artifacts")]
    assert "the 9 stage runs it executed saved nothing" in artifacts, artifacts

    first = run_cli("run", "diamond", "--notebook", cwd=tmp_project)
    assert first.code == 0, first
    plain = sorted((tmp_project / "data" / "runs").rglob("diamond-0002-*.ipynb"))[0]
    notebook = nbformat.read(str(plain), as_version=4)
    assert not any("dry_cache" in c.source or "dry-cache" in c.source for c in notebook.cells)


@pytest.mark.parametrize("command", ["run", "why"])
def test_a_blank_prefix_is_a_usage_error_in_the_option_s_words(tmp_project, command):
    """`--prefix " "`: exit status 2 and a message about --prefix (it was exit status 1
    and a message about "ArtifactManager's prefix", which the command line never named)."""
    result = run_cli(command, "diamond", "--prefix", "  ", cwd=tmp_project)
    assert result.code == 2, result
    assert "'--prefix'" in result.output and "ArtifactManager" not in result.output, result
    assert TRACEBACK not in result.output, result


@pytest.mark.parametrize("typed", ["1-5", "-4", "3"])
def test_an_index_out_of_range_says_the_positions_from_both_ends_and_how_a_range_reads(
    tmp_project, typed
):
    """`-i 1-5` with three sets said "Index 3 is out of range" (an index never typed), and
    `-i -4` was told of positions 0 to 2 only, although -3 to -1 are positions too."""
    result = run_cli("run", "diamond", "-p", "three", "-i", typed, cwd=tmp_project)
    assert result.code == 1, result
    assert "there are 3 parameter sets (0 to 2), or -3 to -1 counting from the end" in (
        result.text
    ), result
    assert "A range A-B picks A to B-1: 0-3 picks all of them." in result.text, result
    assert TRACEBACK not in result.output and not (tmp_project / "calls.txt").exists(), result
