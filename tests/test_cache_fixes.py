"""The cache keeps what it holds when a write fails, files each aggregate apart, and
says clearly which artifacts a name matches and when its folder setting names a file.

Real files and runs throughout: the basic test project (``conftest.py``) run with
:func:`assay.run_experiment`, or a :class:`CacheStore` in ``tmp_path``.
"""

from __future__ import annotations

import errno
import pickle
from pathlib import Path

import pytest

import assay
from assay.cache import CacheStore, aggregate_label
from assay.cache_admin import collect_garbage, latest_runs_keys
from assay.caching import JsonCacher, PickleCacher
from assay.errors import AssayError, CacheError
from conftest import Calls, run_cli

KEY_A = "a" * 32
KEY_B = "b" * 32
KEY_C = "c" * 32


def run(root: Path, experiment: str, *param_files: str, **options):
    return assay.run_experiment(experiment, list(param_files), project_root=root, **options)


def meta(experiment: str = "iris", param_set: str = "aggregate", stage: str = "leaderboard"):
    return {"experiment": experiment, "param_set": param_set, "stage": stage, "run_number": 1}


class DiskFillsUpCacher(PickleCacher):
    """Writes the first half of the pickle, then finds the disk full (as on a full disk)."""

    def save(self, obj):
        data = pickle.dumps(obj)
        with open(self.get_path(), "wb") as handle:
            handle.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")


# -- a failed write keeps the entry cached before (SPEC section 10) ------------------------


def test_a_full_disk_while_overwriting_keeps_the_artifact_cached_before(tmp_path: Path):
    cache = CacheStore(tmp_path / "cache")
    cache.save(
        PickleCacher(name="model"),
        {"weights": [1, 2, 3]},
        key=KEY_A,
        output="model",
        meta=meta(stage="fit"),
    )

    with pytest.raises(CacheError) as info:
        cache.save(
            DiskFillsUpCacher(name="model"),
            {"weights": [4, 5, 6]},
            key=KEY_A,
            output="model",
            meta=meta(stage="fit"),
            replace=True,
        )

    assert cache.has(KEY_A, "model")
    assert cache.load(PickleCacher(name="model"), KEY_A, "model") == {"weights": [1, 2, 3]}
    message = str(info.value)
    assert "No space left on device" in message
    assert "is kept" in message and "Free some space" in message
    assert sorted(p.name for p in cache.stage_dir(KEY_A).iterdir()) == [
        "model.meta.json",
        "model.pkl",
    ]  # no half-written file left beside it


def test_a_full_disk_while_overwriting_keeps_the_entry_at_a_cache_url(tmp_path: Path):
    from assay.caches.fsspec import FsspecCacheStore

    url = f"memory://lab/{tmp_path.name}/cache"
    cache = FsspecCacheStore(url, tmp_path / "local")
    cache.save(PickleCacher(name="model"), [1], key=KEY_A, output="model", meta=meta())

    with pytest.raises(CacheError, match="No space left on device"):
        cache.save(DiskFillsUpCacher(name="model"), [2], key=KEY_A, output="model", meta=meta())

    elsewhere = FsspecCacheStore(url, tmp_path / "another machine")
    assert elsewhere.load(PickleCacher(name="model"), KEY_A, "model") == [1]


def test_an_overwrite_whose_cacher_fails_keeps_what_was_cached_and_the_next_run_reuses_it(
    tmp_project: Path, calls: Calls
):
    run(tmp_project, "crashing")
    calls.take()
    (tmp_project / "raise.flag").touch()

    with pytest.raises(CacheError, match="the disk went away"):
        run(tmp_project, "crashing", overwrite=True)

    (tmp_project / "raise.flag").unlink()
    assert assay.load("payload", project_root=tmp_project) == {"numbers": list(range(50))}
    calls.take()
    run(tmp_project, "crashing")
    assert calls.take() == []  # all still cached


IN_PLACE = """
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import PathRef


@dataclass
class Params(assay.ExperimentParameters):
    size: int = 3


@assay.stage(outputs=["table"], cachers=[PathRef])
def write_table(record):
    if (Path(record.manager.config.root) / "fail.flag").exists():
        raise OSError(28, "No space left on device")
    path = record.get_path("table")
    Path(path).write_text("row\\n" * record.params.size)
    return path


def get_params():
    return [Params(name="only")]


def run(param_sets, manager):
    for params in param_sets:
        write_table(assay.Record(manager, params))
"""


def test_an_in_place_stage_failing_on_overwrite_keeps_what_was_cached(tmp_project: Path):
    (tmp_project / "experiments" / "in_place.py").write_text(IN_PLACE)
    run(tmp_project, "in_place")
    (tmp_project / "fail.flag").touch()

    with pytest.raises(AssayError):
        run(tmp_project, "in_place", overwrite=True)

    path = assay.load("table", project_root=tmp_project)
    assert Path(path).read_text() == "row\n" * 3


# -- each aggregate keeps its own by-name folder ---------------------------------------------


def test_aggregates_over_other_parameter_sets_each_keep_a_link_that_gc_and_load_follow(
    tmp_project: Path,
):
    run(tmp_project, "diamond", "two")
    run(tmp_project, "diamond", "three")
    run(tmp_project, "diamond", "three")  # the same aggregate again: the same folder
    cache = CacheStore(tmp_project / "data" / "cache")
    two, three = aggregate_label(["a", "b"]), aggregate_label(["a", "b", "c"])
    assert sorted(p for _, p, _, _ in cache.named("diamond", "aggregate", "summarize")) == sorted(
        [two, three]
    )

    removed, _ = collect_garbage(cache, keep=latest_runs_keys(tmp_project / "assay.db"))

    assert removed == []  # the first run's aggregate is linked too
    with pytest.raises(CacheError) as info:
        assay.load("summary", param_set="aggregate", project_root=tmp_project)
    assert two in str(info.value) and three in str(info.value)
    assert assay.load("summary", param_set=two, project_root=tmp_project) == {"a": 11, "b": 32}
    assert set(assay.load("summary", param_set=three, project_root=tmp_project)) == {"a", "b", "c"}


def test_load_finds_every_aggregate_folder_and_a_single_one_by_aggregate(tmp_path: Path):
    cache = CacheStore(tmp_path / "cache")
    for key, value in ((KEY_A, [1]), (KEY_B, [2])):
        cache.save(JsonCacher(name="table"), value, key=key, output="table", meta=meta())
    cache.link("paper", aggregate_label(["default"]), "compare", KEY_A)
    cache.link("paper", aggregate_label(["hostile"]), "compare", KEY_B)

    def load(**names):
        return assay.load("table", cache_dir=cache.root, project_root=tmp_path, **names)

    with pytest.raises(CacheError) as info:
        load(param_set="aggregate")
    message = str(info.value)
    assert message.startswith("2 cached artifacts match output='table', param_set='aggregate'")
    assert aggregate_label(["default"]) in message and aggregate_label(["hostile"]) in message
    first = min(aggregate_label([name]) for name in ("default", "hostile"))
    assert message.endswith(f"Give the aggregate's folder as param_set (param_set={first!r}, ...).")
    assert load(param_set=aggregate_label(["hostile"])) == [2]

    cache.prune_links({KEY_B})
    assert load(param_set="aggregate") == [1]


def test_a_new_aggregate_link_retires_the_plain_one_older_versions_wrote(tmp_path: Path):
    """A cache from before aggregate-DIGEST folders kept its plain ``aggregate`` link:
    its old result was never collected, and load(param_set="aggregate") always asked."""
    cache = CacheStore(tmp_path / "cache")
    over = {KEY_A: ["quick"], KEY_B: ["default"], KEY_C: ["default"]}  # what each aggregated
    for key, value in ((KEY_A, [1]), (KEY_B, [2]), (KEY_C, [3])):
        params = ["h", [[f"h{i}", name] for i, name in enumerate(over[key])]]
        made = {**meta(), "ingredients": {"params": params}}
        cache.save(JsonCacher(name="table"), value, key=key, output="table", meta=made)
    cache.link("paper", "aggregate", "compare", KEY_A)  # as assay 0.1 filed it
    cache.link("paper", "aggregate", "other", KEY_C)

    cache.link("paper", aggregate_label(["default"]), "compare", KEY_B)

    # Moved to the folder of the sets it aggregated, not dropped: gc keeps it.
    assert sorted(row[1:] for row in cache.named("paper", "aggregate", None)) == sorted([
        ("aggregate", "other", KEY_C),
        (aggregate_label(["default"]), "compare", KEY_B),
        (aggregate_label(["quick"]), "compare", KEY_A),
    ])  # fmt: skip
    assert assay.load("table", param_set=aggregate_label(["quick"]), cache_dir=cache.root,
                      project_root=tmp_path) == [1]  # fmt: skip
    cache.link("paper", aggregate_label(["default"]), "other", KEY_C)  # its own folder
    assert [row[1:] for row in cache.named("paper", "aggregate", "other")] == [
        (aggregate_label(["default"]), "other", KEY_C)
    ]


def test_a_cache_url_finds_every_aggregate_folder(tmp_path: Path):
    from assay.caches.fsspec import FsspecCacheStore

    cache = FsspecCacheStore(f"memory://lab/{tmp_path.name}/cache", tmp_path / "local")
    for key, value in ((KEY_A, [1]), (KEY_B, [2])):
        cache.save(JsonCacher(name="table"), value, key=key, output="table", meta=meta())
    cache.link("paper", aggregate_label(["default"]), "compare", KEY_A)
    cache.link("paper", aggregate_label(["hostile"]), "compare", KEY_B)
    cache.link("paper", "default", "compare", KEY_B)

    found = cache.named("paper", "aggregate", "compare")

    assert [(p, k) for _, p, _, k in found] == sorted(
        [(aggregate_label(["default"]), KEY_A), (aggregate_label(["hostile"]), KEY_B)]
    )


def test_an_aggregate_folder_is_the_same_for_the_same_parameter_sets():
    assert aggregate_label(["b", "a", "a"]) == aggregate_label(["a", "b"])
    assert aggregate_label(["a", "b"]) != aggregate_label(["a", "b", "c"])
    assert aggregate_label(["a", "b"]) == "aggregate-d9592208"  # folder names stay put


# -- an ambiguous name lists the links that matched -----------------------------------------


def test_an_ambiguous_name_lists_each_candidate_by_the_link_that_matched(tmp_path: Path):
    """Two experiments' aggregates, both sidecars written by experiment iris (the sidecar
    names whoever made the entry first): the choice is between the links."""
    cache = CacheStore(tmp_path / "cache")
    for key, value in ((KEY_A, [1]), (KEY_B, [2])):
        cache.save(
            JsonCacher(name="leaderboard"), value, key=key, output="leaderboard", meta=meta()
        )
    cache.link("iris", "aggregate", "leaderboard", KEY_A)
    cache.link("iproc", "aggregate", "leaderboard", KEY_B)

    with pytest.raises(CacheError) as info:
        assay.load("leaderboard", cache_dir=cache.root, project_root=tmp_path)

    message = str(info.value)
    assert "leaderboard (experiment iproc, parameter set aggregate, stage leaderboard" in message
    assert "leaderboard (experiment iris, parameter set aggregate, stage leaderboard" in message
    assert assay.load(
        "leaderboard", experiment="iproc", cache_dir=cache.root, project_root=tmp_path
    ) == [2]


# -- a cache folder setting that names a file ---------------------------------------------


def test_a_cache_folder_setting_naming_a_file_says_where_it_comes_from_and_keeps_the_file(
    tmp_project: Path,
):
    notes = tmp_project / "notes.txt"
    notes.write_text("my notes\n")

    result = run_cli("run", "diamond", cwd=tmp_project, env={"ASSAY_CACHE_DIR": str(notes)})

    assert result.code != 0, result
    assert f"The cache folder {notes} cannot be used: {notes} is a file, not a folder" in (
        result.text
    )
    assert f"environment variable ASSAY_CACHE_DIR={notes}" in result.text
    assert "damaged" not in result.text and "Remove or move it" not in result.text
    assert notes.read_text() == "my notes\n"


def test_a_cache_folder_below_a_file_is_named_with_the_file_and_the_setting(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("my notes\n")
    cache = CacheStore(tmp_path / "notes.txt" / "cache")

    with pytest.raises(CacheError) as info:
        cache.check_usable()

    message = str(info.value)
    assert f"{tmp_path / 'notes.txt'} is a file, not a folder" in message
    assert "choose another folder for the cache (give it with --cache DIR" in message
