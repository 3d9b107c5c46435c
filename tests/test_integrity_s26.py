"""The cache and the run store when something else goes on: damaged or copied sidecars,
``assay cache gc`` and ``verify`` while runs write, projects sharing one cache, a full
disk, a run stopped in the middle of a save.

Real files, real processes (another ``assay`` or Python process where SPEC 4 says one
may be at work), real SQLite; a full disk is a process whose files may not grow
(``RLIMIT_FSIZE``, what SQLite meets on a full disk too) or ``/dev/full``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import assay
from assay.cache import CacheStore, open_cache
from assay.cache_admin import collect_garbage, latest_runs_keys, list_entries, verify_all
from assay.caching import JsonCacher, PickleCacher
from assay.config import ProjectConfig
from assay.errors import CacheError, CorruptArtifactError
from assay.lineage import lineage
from assay.store import RunStore
from conftest import copy_project, run_cli

KEY_A = "a" * 32
KEY_B = "b" * 32

resource = pytest.importorskip("resource")  # (not on Windows)


def meta(param_set: str = "s0", stage: str = "make") -> dict:
    return {"experiment": "heavy", "param_set": param_set, "stage": stage, "run_number": 1}


def save(cache: CacheStore, key: str, value, output: str = "obj", cacher=None, **names) -> dict:
    return cache.save(
        cacher or PickleCacher(name=output), value, key=key, output=output, meta=meta(**names)
    )


def sidecar(cache: CacheStore, key: str, output: str = "obj") -> Path:
    return Path(cache.meta_path(key, output))


def rewrite(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# -- D2: a sidecar never makes assay delete (or read) files outside its stage folder -------


@pytest.mark.parametrize("victim_is_folder", [False, True], ids=["file", "folder"])
def test_a_sidecar_naming_paths_outside_its_folder_is_damaged_and_removes_nothing_there(
    tmp_path: Path, victim_is_folder: bool
):
    """A files[].path of "../../../../victim.txt" made a run, and `cache verify --remove`,
    delete the file (or rmtree the folder) it pointed at while "discarding" the entry."""
    cache = CacheStore(tmp_path / "cache")
    save(cache, KEY_A, {"mean": 1.0})
    victim = tmp_path / ("victimdir" if victim_is_folder else "victim.txt")
    if victim_is_folder:
        (victim / "thesis").mkdir(parents=True)
        (victim / "thesis" / "chapter1.tex").write_text("precious")
    else:
        victim.write_text("precious thesis")
    record = json.loads(sidecar(cache, KEY_A).read_text())
    record["files"][0]["path"] = os.path.relpath(victim, cache.stage_dir(KEY_A))
    sidecar(cache, KEY_A).write_text(json.dumps(record))

    with pytest.raises(CorruptArtifactError, match="outside its stage folder"):
        cache.entry(KEY_A, "obj", PickleCacher(name="obj"))
    with pytest.raises(CorruptArtifactError, match="outside its stage folder"):
        cache.load(PickleCacher(name="obj"), KEY_A, "obj")
    checked, bad = verify_all(cache, remove=True, without_record=[])
    cache.discard(KEY_A, "obj")  # as a run does with an entry it found damaged

    assert checked == 1 and len(bad) == 1 and "outside its stage folder" in bad[0][1]
    assert victim.exists()
    assert victim_is_folder or victim.read_text() == "precious thesis"
    assert not victim_is_folder or (victim / "thesis" / "chapter1.tex").read_text() == "precious"
    assert cache.read_meta(KEY_A, "obj") is None  # the damaged record is gone


def test_discarding_an_entry_does_not_follow_a_link_out_of_its_stage_folder(tmp_path: Path):
    """A sound-looking relative path ("sub/notes.txt") under a link to another folder."""
    cache = CacheStore(tmp_path / "cache")
    save(cache, KEY_A, {"mean": 1.0})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("keep me")
    (cache.stage_dir(KEY_A) / "sub").symlink_to(elsewhere)
    record = json.loads(sidecar(cache, KEY_A).read_text())
    record["files"].append({"path": "sub/notes.txt", "size": 7, "checksum": "x"})
    sidecar(cache, KEY_A).write_text(json.dumps(record))

    cache.discard(KEY_A, "obj")

    assert (elsewhere / "notes.txt").read_text() == "keep me"
    assert not (cache.stage_dir(KEY_A) / "obj.pkl").exists()  # its own file did go


# -- D8: a sidecar copied from another entry is damaged, never the other's artifact --------


def test_a_sidecar_copied_from_another_artifact_is_damaged_not_loaded(tmp_path: Path):
    """Copying s1's sidecar over s0's made every load of s0's artifact give s1's, and
    verify said all was well."""
    cache = CacheStore(tmp_path / "cache")
    save(cache, KEY_A, {"mean": 0.0015}, param_set="s0")
    save(cache, KEY_B, {"mean": -0.0012}, param_set="s1")
    cache.link("heavy", "s0", "make", KEY_A)
    cache.link("heavy", "s1", "make", KEY_B)
    shutil.copy(sidecar(cache, KEY_B), sidecar(cache, KEY_A))

    with pytest.raises(CorruptArtifactError, match=f"record of another stage run \\({KEY_B}\\)"):
        cache.load(PickleCacher(name="obj"), KEY_A, "obj")
    with pytest.raises(CorruptArtifactError, match="record of another stage run"):
        cache.entry(KEY_A, "obj")
    with pytest.raises(CacheError):
        assay.load("obj", param_set="s0", experiment="heavy", cache_dir=cache.root,
                   project_root=tmp_path)  # fmt: skip
    checked, bad = verify_all(cache, without_record=[])
    assert checked == 2 and [m["key"] for m, _ in bad] == [KEY_A]

    # A sidecar of another output of the same stage run is no better.
    save(cache, KEY_B, [1, 2], output="other")
    shutil.copy(sidecar(cache, KEY_B, "other"), sidecar(cache, KEY_B))
    assert cache.read_meta(KEY_B, "obj") is None
    with pytest.raises(CorruptArtifactError, match="record of output 'other'"):
        cache.entry(KEY_B, "obj")


# -- D1: gc while a run writes a stage folder --------------------------------------------


GC_IN_ANOTHER_PROCESS = """
import sys
from assay.cache import CacheStore
from assay.cache_admin import collect_garbage
removed, _ = collect_garbage(CacheStore(sys.argv[1]))
print(len(removed))
"""


def gc_elsewhere(root: Path) -> int:
    """``assay cache gc`` on the cache at ``root``, from another process; how many went."""
    done = subprocess.run(
        [sys.executable, "-c", GC_IN_ANOTHER_PROCESS, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


class GcWhileSaving(PickleCacher):
    """A big artifact: while it is being written, someone runs ``assay cache gc``."""

    def save(self, obj):
        path = self.get_path()
        with open(path, "wb") as handle:
            handle.write(pickle.dumps(obj)[:10])
            self.collected = gc_elsewhere(self._dir.parent.parent.parent)
        return super().save(obj)


def test_gc_leaves_alone_the_stage_folder_a_run_is_writing(tmp_path: Path):
    """The first output of a two-output stage was saved, the second being written: gc
    removed the folder (complete, not linked yet) and the run died on FileNotFoundError."""
    cache = CacheStore(tmp_path / "cache")
    save(cache, KEY_A, {"seed": 0}, output="small", cacher=JsonCacher(name="small"))
    big = GcWhileSaving(name="big")

    save(cache, KEY_A, list(range(1000)), output="big", cacher=big)

    assert big.collected == 0
    assert gc_elsewhere(cache.root) == 0  # saved, not linked yet: still being written
    cache.link("heavy", "s0", "make", KEY_A)
    assert cache.load(GcWhileSaving(name="big"), KEY_A, "big") == list(range(1000))
    # gc stays useful: an entry a newer one replaced under its name goes at once.
    save(cache, KEY_B, {"seed": 1}, output="small", cacher=JsonCacher(name="small"))
    cache.link("heavy", "s0", "make", KEY_B)
    assert gc_elsewhere(cache.root) == 1
    assert not cache.stage_dir(KEY_A).exists() and cache.has(KEY_B, "small")


class FolderGoesMidSave(PickleCacher):
    """The stage folder disappears while the artifact is written (as under an older gc)."""

    def save(self, obj):
        shutil.rmtree(self._dir)
        return super().save(obj)


def test_a_save_whose_folder_went_names_the_artifact(tmp_path: Path):
    """The clean-up of the failed save raised FileNotFoundError itself, hiding the message
    that names the stage and artifact: "Error: No such file or directory: ..."."""
    cache = CacheStore(tmp_path / "cache")

    with pytest.raises(CacheError) as info:
        save(cache, KEY_A, [1], output="big", cacher=FolderGoesMidSave(name="big"))

    assert "Could not save output 'big' of stage 'make'" in str(info.value)


# -- D4: verify while another run replaces entries -----------------------------------------


REPLACER = """
import sys
from pathlib import Path
from assay.cache import CacheStore
from assay.caching import Cacheable

class Many(Cacheable):  # a folder of many files: replacing it takes a while
    def save(self, obj):
        folder = Path(self.get_path())
        folder.mkdir()
        for i in range(300):
            (folder / f"part{i}.txt").write_text(str(obj))
        return str(folder)

cache = CacheStore(sys.argv[1])
for i in range(int(sys.argv[2])):
    cache.save(Many(name="df"), i, key="f" * 32, output="df", meta={"stage": "make_df"})
print("done")
"""


def test_verify_while_a_run_replaces_an_entry_reports_and_removes_nothing(tmp_path: Path):
    """verify listed the folder, then found no sidecar (the run was between removing the
    old one and renaming the new one in): FAILED for a healthy artifact, and --remove
    deleted the entry just written."""
    root = tmp_path / "cache"
    assert subprocess.run([sys.executable, "-c", REPLACER, root, "1"], timeout=120).returncode == 0
    writer = subprocess.Popen([sys.executable, "-c", REPLACER, root, "12"], text=True,
                              stdout=subprocess.PIPE)  # fmt: skip
    failures = []
    try:
        while writer.poll() is None:
            checked = verify_all(CacheStore(root), True, without_record=[], unfinished=[])
            failures += checked[1]
    finally:
        output, _ = writer.communicate(timeout=120)

    assert output.strip() == "done" and writer.returncode == 0
    assert failures == []
    assert verify_all(CacheStore(root), without_record=[]) == (1, [])


# -- D3: projects sharing one cache --------------------------------------------------------

SHARED = """
from dataclasses import dataclass
import assay
from assay.caching import JsonCacher

@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 0

@assay.stage(inputs=None, outputs=["summary"], cachers=[JsonCacher])
def summarize(record):
    return {"seed": record.params.seed, "v": VERSION}

def get_params():
    return [Params(name="s0"), Params(name="s1", seed=1)]

def run(param_sets, manager):
    for params in param_sets:
        summarize(assay.Record(manager, params))
"""


def shared_cache_project(folder: Path, cache: Path, version: int) -> Path:
    (folder / "experiments").mkdir(parents=True)
    (folder / "experiments" / "heavy.py").write_text(f"VERSION = {version}\n{SHARED}")
    (folder / "assay.toml").write_text(f'cache_dir = "{cache}"\n')
    return folder


def summaries(cache: Path) -> set[str]:
    return {p.parent.name for p in (cache / "objects").glob("*/*/summary.meta.json")}


def test_gc_in_one_project_keeps_what_another_project_sharing_the_cache_made(
    tmp_path: Path, caplog
):
    """gc in Q removed the artifacts of P's latest run (by-name links are the cache's:
    Q ran last and owns them; Q's run store knows nothing of P's runs), and assay.load by
    name in P gave Q's artifact without a word."""
    cache = tmp_path / "shared-cache"
    p = shared_cache_project(tmp_path / "P", cache, version=1)
    q = shared_cache_project(tmp_path / "Q", cache, version=2)
    assert run_cli("run", "heavy", cwd=p).code == 0
    made_by_p = summaries(cache)
    assert run_cli("run", "heavy", cwd=q).code == 0

    dry = run_cli("cache", "gc", "--dry", cwd=q)
    collected = run_cli("cache", "gc", cwd=q)

    assert dry.code == 0 and "Would remove 0 entries" in dry.text, dry
    assert collected.code == 0 and "Removed 0 entries" in collected.text, collected
    p_root = ProjectConfig.load(p).root
    assert f"Kept 2 entries that other projects sharing this cache made: {p_root} (2)" in (
        collected.text
    )
    assert made_by_p <= summaries(cache)
    assert "2 cached" in run_cli("run", "heavy", cwd=p).text  # nothing recomputed
    with caplog.at_level(logging.WARNING, logger="assay"):
        found = assay.load("summary", param_set="s0", experiment="heavy", project_root=p)
    assert found["v"] == 1  # P ran last now: its own
    caplog.clear()
    assert run_cli("run", "heavy", cwd=q).code == 0
    with caplog.at_level(logging.WARNING, logger="assay"):
        found = assay.load("summary", param_set="s0", experiment="heavy", project_root=p)
        tree = lineage("heavy/s0/summarize/summary", config=ProjectConfig.load(p))
    assert found["v"] == 2
    q_root = str(ProjectConfig.load(q).root)
    assert f"another project made it: {q_root}" in caplog.text
    assert tree.project == q_root and tree.run["project"] == q_root and tree.params is None
    # Asked to, gc in Q removes what P made and Q does not use.
    config = ProjectConfig.load(q)
    removed, _ = collect_garbage(
        open_cache(config), keep=latest_runs_keys(config.store_path), all_projects=True, notes=[]
    )
    assert len(removed) == 2 and not made_by_p & summaries(cache)


# -- D5, D6: a full disk --------------------------------------------------------------------


def no_growing_files() -> None:
    """In the child process: no file may grow (what a full disk does to SQLite)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_read_only_commands_work_with_the_store_on_a_full_disk(tmp_project: Path):
    """`assay ls`, `show` and `cache gc` (which the full-disk message tells you to run)
    all failed: opening the run store needs its shared-memory file written."""
    assert run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project).code == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")

    def assay_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "assay", *args], cwd=tmp_project, env=env,
                              capture_output=True, text=True, timeout=120,
                              preexec_fn=no_growing_files)  # fmt: skip

    listed, shown, gc = assay_cli("ls"), assay_cli("show", "1"), assay_cli("cache", "gc")
    again = assay_cli("run", "diamond", "-p", "two")

    assert listed.returncode == 0 and "completed" in listed.stdout, listed
    assert shown.returncode == 0 and "diamond" in shown.stdout, shown
    assert gc.returncode == 0 and "Removed 0 entries" in gc.stdout, gc
    assert again.returncode == 1 and "could not be written" in again.stderr, again
    assert run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project).code == 0  # room again


UNRECORDED_RUN = """
import resource, sys
from assay.store import RunStore, StageRunInfo
store = RunStore(sys.argv[1])
run = store.begin_run("heavy", command="assay run heavy")
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # the disk fills up during the run
try:
    store.record_stages(run.id, [StageRunInfo("s0", "make", "executed")])
except Exception as exc:
    print(type(exc).__name__)
"""


def test_a_run_the_full_disk_kept_from_being_recorded_is_not_said_killed(tmp_path: Path):
    """It was settled later with "it was killed (kill -9, out of memory, ...)"."""
    store_path = tmp_path / "assay.db"
    child = subprocess.run([sys.executable, "-c", UNRECORDED_RUN, store_path],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert child.stdout.strip() == "RunStoreError", child

    with RunStore(store_path) as store:
        assert store.settle_abandoned_runs() == [1]
        run = store.get_run(1)

    assert run.status == "interrupted"
    assert "could not be recorded" in run.error and "disk was full" in run.error
    assert "kill -9" not in run.error
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- D7, D9: a stopped save, a full disk after a save ---------------------------------------


class StoppedMidSave(PickleCacher):
    """Ctrl-C (or SIGTERM, which assay turns into an exception) while the file is written."""

    def save(self, obj):
        with open(self.get_path(), "wb") as handle:
            handle.write(b"half a pickle")
            raise KeyboardInterrupt


def test_a_save_stopped_by_ctrl_c_leaves_no_temporary_file(tmp_path: Path):
    cache = CacheStore(tmp_path / "cache")

    with pytest.raises(KeyboardInterrupt):
        save(cache, KEY_A, list(range(10)), cacher=StoppedMidSave(name="obj"))

    assert [p.name for p in cache.stage_dir(KEY_A).iterdir()] == []


def test_verify_and_gc_tell_of_unfinished_writes(tmp_path: Path, caplog):
    """Writes a killed run left (170 MB in the report) went unmentioned for an hour."""
    cache = CacheStore(tmp_path / "cache")
    save(cache, KEY_A, {"seed": 0})
    cache.link("heavy", "s0", "make", KEY_A)
    (cache.stage_dir(KEY_A) / ".tmp-5674-18-4e4261-obj.pkl").write_bytes(b"x" * 5000)

    unfinished: list = []
    verify_all(cache, without_record=[], unfinished=unfinished)
    notes: list = []
    removed, _ = collect_garbage(cache, dry=True, notes=notes)
    with caplog.at_level(logging.WARNING, logger="assay"):
        verify_all(cache, without_record=[])

    assert [(Path(p).name, size) for p, size in unfinished] == [
        (".tmp-5674-18-4e4261-obj.pkl", 5000)
    ]
    assert removed == []
    assert notes and notes[0].startswith("Kept 1 unfinished write(s), 5.0 kB, written less")
    assert "1 unfinished write(s) in the cache, 5.0 kB" in caplog.text


def test_a_full_disk_while_indexing_a_saved_artifact_names_the_file_and_what_to_do(
    tmp_path: Path,
):
    """ "Error: No space left on device." with no path and no advice."""
    cache = CacheStore(tmp_path / "cache")
    cache.known_reads("make", "base")  # the index, read once per process: empty
    (cache.root / "reads").mkdir(parents=True)
    (cache.root / "reads" / "make.jsonl").symlink_to("/dev/full")  # a disk with no room

    with pytest.raises(CacheError) as info:
        cache.add_reads("make", "base", frozenset({"seed"}))  # outside a batch: written now

    message = str(info.value)
    assert f"Could not write {cache.root}/reads/make.jsonl in the cache" in message
    assert "Free some space (assay cache gc)" in message


def test_a_code_text_that_cannot_be_written_leaves_no_temporary_file(tmp_path: Path):
    cache = CacheStore(tmp_path / "cache")

    with pytest.raises(UnicodeEncodeError):
        cache.put_code_texts({"ab" * 16: "def f():\n    return '\udc80'\n"})

    assert [p.name for p in (cache.root / "code" / "ab").iterdir()] == []


# -- B-F2: cache ls lists an artifact under every name it is filed under -------------------


def test_cache_ls_lists_a_shared_artifact_under_each_parameter_set(tmp_path: Path):
    """Sets that reuse another set's stage run were missing from `assay cache ls`."""
    cache = CacheStore(tmp_path / "cache")
    save(cache, KEY_A, {"seed": 1}, param_set="f1")
    save(cache, KEY_B, {"seed": 2}, param_set="old")  # no link points to it
    for name in ("f1", "ok", "s1"):
        cache.link("slow", name, "make", KEY_A)

    listed = list_entries(cache)
    only_slow = list_entries(cache, experiment="slow")

    rows = [(m["experiment"], m["param_set"], m["stage"], m["key"]) for m in listed]
    assert rows == [
        ("heavy", "old", "make", KEY_B),
        ("slow", "f1", "make", KEY_A),
        ("slow", "ok", "make", KEY_A),
        ("slow", "s1", "make", KEY_A),
    ]
    assert (listed.artifacts, len(listed)) == (2, 4)
    assert listed.size == sum(m["size"] for m in listed if m["param_set"] in ("old", "f1"))
    assert [m["param_set"] for m in only_slow] == ["f1", "ok", "s1"]


def test_the_bad_project_lists_each_set_sharing_a_stage_run(tmp_path: Path):
    project = copy_project("bad", tmp_path)
    assert run_cli("run", "good", cwd=project).code == 0

    listed = list_entries(open_cache(ProjectConfig.load(project)), experiment="good")

    assert [(m["param_set"], m["stage"]) for m in listed] == [
        ("alpha", "load"), ("alpha", "train"), ("beta", "load"), ("beta", "train"),
    ]  # fmt: skip
    assert listed.artifacts == 3


def test_sidecars_record_the_project_that_wrote_them(tmp_project: Path):
    assert run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project).code == 0
    cache = open_cache(ProjectConfig.load(tmp_project))

    makers = {json.dumps(m.get("project"), sort_keys=True) for m in list_entries(cache)}

    assert len(makers) == 1
    assert json.loads(makers.pop())["root"] == str(ProjectConfig.load(tmp_project).root)


@pytest.mark.parametrize(
    ("cacher", "value", "advice"),
    [
        (JsonCacher, CacheStore, "JSON holds dicts, lists, strings, numbers, booleans and None"),
        (PickleCacher, lambda x: x, "pickle cannot store it (a lambda"),
    ],
    ids=["json", "pickle"],
)
def test_a_value_its_cacher_cannot_store_is_told_what_to_do(tmp_path: Path, cacher, value, advice):
    """The message named stage, output and cacher, but said nothing of what to change."""
    cache = CacheStore(tmp_path / "cache")

    with pytest.raises(CacheError) as info:
        save(cache, KEY_A, value, cacher=cacher(name="obj"))

    assert advice in str(info.value), info.value
    assert [p.name for p in cache.stage_dir(KEY_A).iterdir()] == []


def test_why_and_dry_name_the_other_project_whose_run_made_a_shared_artifact(tmp_path: Path):
    """In Q, `assay why` and `--dry` said "artifact made by run 1" for what P's run 1 made:
    Q has no run 1, or another one."""
    cache = tmp_path / "shared-cache"
    p = shared_cache_project(tmp_path / "P", cache, version=1)
    q = shared_cache_project(tmp_path / "Q", cache, version=1)
    assert run_cli("run", "heavy", cwd=p).code == 0
    p_root = str(ProjectConfig.load(p).root)

    why_q = run_cli("why", "heavy", cwd=q)
    dry_q = run_cli("run", "heavy", "--dry", cwd=q)
    why_p = run_cli("why", "heavy", cwd=p)

    assert why_q.code == 0 and dry_q.code == 0, (why_q, dry_q)
    assert f"made by run 1 of the project {p_root}" in " ".join(why_q.text.split()), why_q
    assert f"run 1 of {p_root}" in dry_q.stdout, dry_q  # COLUMNS=400: one line per row
    assert "made by run 1 (" in why_p.text and "of the project" not in why_p.text, why_p
