"""The command line as a new user meets it (SPEC sections 8 to 10), session 35.

Each test drives the real command line (``python -m assay`` in a subprocess) on a small
project of its own, as a researcher would type the commands.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import one_experiment_project, run_cli

TRACEBACK = "Traceback (most recent call last)"

CHAIN = """
from dataclasses import dataclass
import assay
from assay.caching import JsonCacher

@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1

@assay.stage(outputs=["data"], cachers=[JsonCacher])
def load(record):
    return [record.params.n]

@assay.stage(inputs=["data"], outputs=["model"], cachers=[JsonCacher])
def train(record, data):
    return sum(data)

def get_params():
    return [Params(name="a")]

def run(param_sets, manager):
    for p in param_sets:
        train(load(assay.Record(manager, p)))
"""

# A stage made while run() plans (a factory of stages): known only once run() is called.
MADE_IN_RUN = """
from dataclasses import dataclass
from pathlib import Path
import assay
from assay.caching import JsonCacher

@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1

def make_stage(name):
    def body(record):
        with open(Path(__file__).parent.parent / "made.txt", "a") as calls:
            calls.write(name + "\\n")
        return record.params.n
    body.__name__ = name
    return assay.stage(outputs=[name + "_out"], cachers=[JsonCacher])(body)

def get_params():
    return [Params(name="a")]

def run(param_sets, manager):
    made = make_stage("made_late")
    for p in param_sets:
        made(assay.Record(manager, p))
"""


def recorded_runs(root: Path) -> int:
    """How many runs the project's run store holds (0 without one)."""
    if not (root / "assay.db").exists():
        return 0
    with sqlite3.connect(root / "assay.db") as db:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def test_a_mistyped_overwrite_stage_is_a_usage_error_and_records_no_run(tmp_path):
    """`assay run cli2_chain --overwrite-stage trian`: exit status 2 with the stages named
    and the closest suggested, before anything runs or is recorded (it recorded a failed
    run, with a log and a report, after planning)."""
    root = one_experiment_project(tmp_path, "cli2_chain", CHAIN)
    result = run_cli("run", "cli2_chain", "--overwrite-stage", "trian", cwd=root)
    assert result.code == 2, result
    assert TRACEBACK not in result.output, result
    assert "--overwrite-stage 'trian' (did you mean 'train'?)" in result.text, result
    assert "Its stages: load, train" in result.text, result
    assert recorded_runs(root) == 0
    assert not (root / "logs").exists() or not list((root / "logs").glob("*.log"))
    assert not (root / "data" / "cache" / "objects").exists()
    ran = run_cli("run", "cli2_chain", "--overwrite-stage", "train", cwd=root)
    assert ran.code == 0, ran
    assert recorded_runs(root) == 1


def test_overwrite_stage_names_a_stage_that_run_makes_while_it_plans(tmp_path):
    """A stage defined inside run() is a stage of the run: --overwrite-stage takes its name
    and recomputes it (the early check must not refuse it)."""
    root = one_experiment_project(tmp_path, "cli2_made", MADE_IN_RUN)
    assert run_cli("run", "cli2_made", cwd=root).code == 0
    again = run_cli("run", "cli2_made", "--overwrite-stage", "made_late", cwd=root)
    assert again.code == 0, again
    assert (root / "made.txt").read_text().split() == ["made_late", "made_late"]
    wrong = run_cli("run", "cli2_made", "--overwrite-stage", "made_lat", cwd=root)
    assert wrong.code == 2, wrong
    assert "(did you mean 'made_late'?)" in wrong.text, wrong
    assert recorded_runs(root) == 2
    assert (root / "made.txt").read_text().split() == ["made_late", "made_late"]


def test_init_lays_out_the_folders_the_projects_settings_name(tmp_path):
    """`assay init` in a project whose pyproject.toml sets experiments_dir, params_dir and
    logs_dir under [tool.assay]: the example goes where `assay run` looks for it, so the
    command init prints works (it wrote experiments/example.py, and `assay run example`
    then said there is no experiments folder exps/)."""
    root = tmp_path / "study"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "study"\n\n[tool.assay]\nexperiments_dir = "exps"\n'
        'params_dir = "config/params"\nlogs_dir = "out/logs"\n'
    )
    made = run_cli("init", cwd=root)
    assert made.code == 0, made
    assert (root / "exps" / "example.py").is_file()
    assert (root / "config" / "params" / "example.py").is_file()
    assert (root / "out" / "logs").is_dir()
    assert not (root / "experiments").exists() and not (root / "params").exists()
    assert "Next: assay run example -p example" in made.stdout, made
    ran = run_cli("run", "example", "-p", "example", "-q", cwd=root)
    assert ran.code == 0, ran
    assert list((root / "out" / "logs").glob("example-0001-*.log"))


def test_init_again_keeps_an_own_example_where_the_settings_put_experiments(tmp_path):
    """An `example.py` of the user's own in the configured experiments folder is kept,
    and init says where it is (it named experiments/example.py, a file that was not
    there, and installed the example's parameter file, which imports from it)."""
    root = tmp_path / "study"
    (root / "exps").mkdir(parents=True)
    (root / "assay.toml").write_text('experiments_dir = "exps"\n')
    (root / "exps" / "example.py").write_text("# mine\n")
    made = run_cli("init", cwd=root)
    assert made.code == 0, made
    assert (root / "exps" / "example.py").read_text() == "# mine\n"
    assert not (root / "params" / "example.py").exists()
    assert not (root / "experiments").exists()
    assert "exps/example.py was there already" in made.stdout, made


def test_a_wrong_setting_is_named_with_its_file_and_line(tmp_path):
    """An unknown or mistyped setting in assay.toml, or in [tool.assay] of pyproject.toml:
    the message names the file, the line and the setting (it named no line, and in a
    long pyproject.toml the setting had to be searched for)."""
    root = one_experiment_project(tmp_path, "cli2_chain", CHAIN)
    (root / "assay.toml").write_text('# settings\n\nlogs_dir = "logs"\ncache_dri = "c"\n')
    result = run_cli("ls", cwd=root)
    assert result.code == 1 and TRACEBACK not in result.output, result
    assert f"{root / 'assay.toml'}, line 4: unknown assay setting" in result.text, result
    assert "cache_dri (did you mean cache_dir?)" in result.text, result
    (root / "assay.toml").unlink()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "lab"\nversion = "1"\n\n[tool.black]\nline-length = 99\n\n'
        '[tool.assay]\nreports_dir = "reports"\n"cache_dir" = 3\n'
    )
    result = run_cli("ls", cwd=root)
    assert result.code == 1 and TRACEBACK not in result.output, result
    where = f"{root / 'pyproject.toml'} [tool.assay], line 10"
    assert f"{where}: cache_dir must be a path in quotes" in result.text, result


def test_a_settings_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    """assay.toml saved by a Windows editor as "UTF-8 with BOM": its settings apply (it
    was "not valid TOML: Invalid statement (at line 1, column 1)", with nothing to see
    there)."""
    root = one_experiment_project(tmp_path, "cli2_chain", CHAIN)
    (root / "assay.toml").write_bytes(b'\xef\xbb\xbflogs_dir = "run-logs"\r\n')
    result = run_cli("run", "cli2_chain", "-q", cwd=root)
    assert result.code == 0, result
    assert list((root / "run-logs").glob("cli2_chain-0001-*.log"))


def test_ls_in_a_new_project_says_there_are_no_runs_yet(tmp_path):
    """`assay init` then `assay ls`: no runs yet, which is no error (exit status 0; it
    was "Error: No run store ... (or you are in another folder)", exit status 1). In a
    folder of no project, ls still says it is in no project, as an error."""
    made = run_cli("init", "lab", cwd=tmp_path)
    assert made.code == 0, made
    for args in (["ls"], ["ls", "-e", "example"], ["ls", "-s", "failed"]):
        listed = run_cli(*args, cwd=tmp_path / "lab" / "experiments")
        assert listed.code == 0, listed
        assert "No runs yet" in listed.text and "Error" not in listed.output, listed
    assert not (tmp_path / "lab" / "assay.db").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside = run_cli("ls", cwd=elsewhere)
    assert outside.code == 1 and "No run store" in outside.text, outside


def test_init_keeps_the_configured_results_folders_out_of_git(tmp_path):
    """`assay init` where the settings put the cache, logs and run store elsewhere than
    data/, logs/ and assay.db: its .gitignore names those (it named only the default
    ones, so `git add .` took in the whole cache)."""
    root = tmp_path / "study"
    root.mkdir()
    (root / "assay.toml").write_text(
        'cache_dir = "cache"\nlogs_dir = "out/logs"\nstore_path = "db/runs.db"\n'
        'reports_dir = "data/html"\n'
    )
    made = run_cli("init", cwd=root)
    assert made.code == 0, made
    ignored = (root / ".gitignore").read_text().splitlines()
    assert {"cache/", "out/logs/", "db/runs.db*", "data/"} <= set(ignored), ignored
    assert "data/html/" not in ignored  # data/ has it already
    (root / ".gitignore").write_text("data/\n")
    again = run_cli("init", cwd=root)
    assert again.code == 0, again
    assert {"cache/", "out/logs/", "db/runs.db*"} <= set(
        (root / ".gitignore").read_text().splitlines()
    )


def test_an_experiment_in_a_subfolder_is_suggested_by_its_dotted_name(tmp_path):
    """experiments/grp/linefit.py runs as `assay run grp.linefit`. Asked for `linefit`,
    `grp.linefi` or `grp/linefit`, the message points at that name (it listed only the
    experiments at the top of experiments/, and for grp/linefit said no more than that
    the path does not exist)."""
    root = one_experiment_project(tmp_path, "cli2_chain", CHAIN)
    (root / "experiments" / "grp").mkdir()
    (root / "experiments" / "grp" / "linefit.py").write_text(CHAIN)
    for typed in ("linefit", "grp.linefi"):
        result = run_cli("run", typed, cwd=root)
        assert result.code == 1 and TRACEBACK not in result.output, result
        assert "Did you mean 'grp.linefit'?" in result.text, result
    as_path = run_cli("run", "grp/linefit", cwd=root)
    assert as_path.code == 1 and TRACEBACK not in as_path.output, as_path
    assert "give its name: 'grp.linefit'" in as_path.text, as_path
    unknown = run_cli("run", "zzz", cwd=root)
    assert "cli2_chain, grp.linefit" in unknown.text, unknown
    assert run_cli("run", "grp.linefit", "-q", cwd=root).code == 0
