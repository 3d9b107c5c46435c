"""Cachers as a researcher's stages use them: session 34 fixes."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import assay
from assay.cache import CacheStore
from assay.caching import (
    Cacheable,
    JsonCacher,
    NumpyCacher,
    PandasCsvCacher,
    PandasParquetCacher,
    PathRef,
    PickleCacher,
)
from assay.errors import CacheError, CorruptArtifactError

KEY_A = "a" * 32


def save(cache: CacheStore, value, cacher, output: str = "obj") -> dict:
    meta = {"stage": "make", "param_set": "s0", "experiment": "cachers_s34"}
    return cache.save(cacher, value, key=KEY_A, output=output, meta=meta)


def failure(tmp_path: Path, value, cacher) -> str:
    """The one-line message of the CacheError a save of ``value`` raises."""
    with pytest.raises(CacheError) as info:
        save(CacheStore(tmp_path / "cache"), value, cacher)
    return " ".join(str(info.value).split())


# -- an output its cacher cannot save: the advice fits the problem --------------------------


def test_numpy_refusing_an_object_array_gives_no_pickling_advice(tmp_path: Path):
    """NumpyCacher's own refusal ("use PickleCacher for those") mentions "pickle", so the
    message went on with ". pickle cannot store it (a lambda ...): give this output no
    cacher": advice for another problem, contradicting the line before it."""
    text = failure(tmp_path, np.array([1, "a", None], dtype=object), NumpyCacher(name="obj"))

    assert "use PickleCacher for those" in text, text
    assert "pickle cannot store it" not in text, text
    assert ".." not in text, text


@pytest.mark.parametrize(
    "value",
    [lambda x: x, pytest.param(__import__("threading").Lock(), id="lock")],
    ids=["lambda", "lock"],
)
def test_what_pickle_cannot_store_still_gets_the_pickling_advice(tmp_path: Path, value):
    text = failure(tmp_path, value, PickleCacher(name="obj"))

    assert "pickle cannot store it (a lambda" in text, text


def test_a_dict_keyed_by_tuples_gets_json_advice(tmp_path: Path):
    """ "keys must be str, int, float, bool or None, not tuple" came with no word of what
    to do, unlike every other value JsonCacher cannot store."""
    text = failure(tmp_path, {(1, 2): 0.5}, JsonCacher(name="obj"))

    assert "JSON keys are text" in text and "PickleCacher" in text, text


def test_json_advice_still_follows_a_json_failure(tmp_path: Path):
    text = failure(tmp_path, {"cacher": object()}, JsonCacher(name="obj"))

    assert "JSON holds dicts, lists" in text, text


# -- a cacher used by hand on a tampered file of the cache ---------------------------------


@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 0


class _Planted:
    """A pickle that, once unpickled, leaves a file behind: proof that it was loaded."""

    def __init__(self, proof: Path):
        self.proof = proof

    def __reduce__(self):
        return (Path.write_text, (self.proof, "unpickled"))


def _cached_file(root: Path, cacher, value, suffix: str) -> Path:
    """Run a one-stage experiment caching ``value``; the file it cached, as filed by name."""

    @assay.stage(outputs=["result"], cachers=[cacher])
    def make(record):
        return value

    manager = assay.ArtifactManager("cachers_s34_hand", project_root=root)
    make(assay.Record(manager, Params(name="p")))
    return root / "data/cache/by-name/cachers_s34_hand/p/make" / f"result{suffix}"


def test_a_pickle_tampered_in_the_cache_is_refused_by_a_cacher_used_by_hand(tmp_path: Path):
    """PickleCacher(path).load(), as SPEC 4 says one loads an artifact in a notebook,
    unpickled whatever the file held: a run and assay.load refuse it, the cacher did not."""
    path = _cached_file(tmp_path, PickleCacher, {"weights": [1, 2]}, ".pkl")
    assert PickleCacher(str(path)).load() == {"weights": [1, 2]}
    proof = tmp_path / "proof.txt"
    path.write_bytes(pickle.dumps(_Planted(proof)))

    with pytest.raises(CorruptArtifactError) as info:
        PickleCacher(str(path)).load()

    assert not proof.exists()
    text = " ".join(str(info.value).split())
    assert "'result' of stage 'make' (parameter set 'p')" in text, text
    assert "not loaded" in text, text


@pytest.mark.parametrize(
    ("cacher", "value", "suffix"),
    [
        (JsonCacher, {"mean": 1.5}, ".json"),
        (NumpyCacher, np.arange(4.0), ".npy"),
        (PandasParquetCacher, pd.DataFrame({"v": [1.0, 2.0]}), ".parquet"),
    ],
    ids=["json", "numpy", "parquet"],
)
def test_other_cachers_used_by_hand_refuse_a_modified_file(tmp_path: Path, cacher, value, suffix):
    path = _cached_file(tmp_path, cacher, value, suffix)
    data = bytearray(path.read_bytes())
    data[-2] ^= 1  # same size, other content
    path.write_bytes(bytes(data))

    with pytest.raises(CorruptArtifactError, match="does not match its recorded checksum"):
        cacher(str(path)).load()


@pytest.mark.parametrize("cacher", [PandasParquetCacher, PandasCsvCacher], ids=["parquet", "csv"])
def test_a_cached_series_loaded_by_hand_is_a_series(tmp_path: Path, cacher):
    """The cacher used by hand did not read the artifact's metadata, which says that it
    is a Series: it gave a one-column DataFrame, where a run and assay.load a Series."""
    series = pd.Series([3.0, 4.0], name="score")
    path = _cached_file(tmp_path, cacher, series, cacher().extension)

    loaded = cacher(str(path)).load()

    pd.testing.assert_series_equal(loaded, series)


def test_a_cacher_used_by_hand_still_loads_a_file_outside_the_cache(tmp_path: Path):
    path = tmp_path / "mine.pkl"
    PickleCacher(str(path)).save([1, 2, 3])

    assert PickleCacher(str(path)).load() == [1, 2, 3]


# -- one path_override for every parameter set -------------------------------------------


def _fixed_path_experiment(root: Path, calls: list[str]):
    """Two parameter sets whose output ``summary`` is written to one fixed file."""

    @assay.stage(outputs=["summary"], cachers=[JsonCacher(str(root / "results/summary.json"))])
    def summarize(record):
        calls.append(record.params.name)
        return {"seed": record.params.seed}

    def run_it():
        manager = assay.ArtifactManager("cachers_s34_fixed", project_root=root)
        for params in (Params(name="a", seed=1), Params(name="b", seed=2)):
            summarize(assay.Record(manager, params))

    return run_it


def test_two_parameter_sets_writing_one_fixed_file_is_refused_and_keeps_the_first(tmp_path):
    """Set b overwrote the file that set a's entry records: every later run "found" a's
    file modified and computed it again (and b's, in turn), forever, and
    assay.load(param_set="a") failed as corrupt. Now b is refused, with what to do."""
    calls: list[str] = []
    run_it = _fixed_path_experiment(tmp_path, calls)

    with pytest.raises(assay.errors.StageError) as info:
        run_it()

    text = " ".join(str(info.value).split())
    assert "'summary' of stage 'summarize'" in text, text
    assert "parameter sets 'a' and 'b'" in text, text
    assert "{params.name}" in text, text
    loaded = assay.load("summary", param_set="a", project_root=tmp_path)
    assert loaded == {"seed": 1}


def test_one_parameter_set_rerun_in_a_session_still_replaces_its_fixed_file(tmp_path: Path):
    """The same stage and set writing its fixed file again with a new key (its code or
    parameters changed between calls in a notebook) replaces it, as before."""

    def once(seed: int):
        @assay.stage(outputs=["summary"], cachers=[JsonCacher(str(tmp_path / "summary.json"))])
        def summarize(record):
            return {"seed": record.params.seed}

        return summarize(assay.Record(manager, Params(name="a", seed=seed)))

    manager = assay.ArtifactManager("cachers_s34_rerun", project_root=tmp_path)
    once(1)
    once(2)

    assert assay.load("summary", param_set="a", project_root=tmp_path) == {"seed": 2}


# -- assay.load(path=...) of an artifact that is a folder, or lies in one ------------------


def _folders_experiment(root: Path) -> Path:
    """A stage whose outputs are a folder it writes (PathRef) and a pickle in a
    ``subdir``; the stage's folder, as filed by name."""

    @assay.stage(outputs=["checkpoint", "model"], cachers=[PathRef, PickleCacher(subdir="sub")])
    def train(record):
        folder = Path(record.get_path("checkpoint"))
        folder.mkdir()
        (folder / "weights.txt").write_text("0.5")
        return str(folder), {"w": 0.5}

    manager = assay.ArtifactManager("cachers_s34_folders", project_root=root)
    train(assay.Record(manager, Params(name="p")))
    return root / "data/cache/by-name/cachers_s34_folders/p/train"


@pytest.mark.parametrize(
    ("inner", "output"),
    [
        ("checkpoint", "checkpoint"),
        ("checkpoint/weights.txt", "checkpoint"),
        ("sub/model.pkl", "model"),
    ],
    ids=["folder artifact", "file in a folder artifact", "file in a subdir"],
)
def test_load_by_path_finds_artifacts_that_are_or_lie_in_folders(tmp_path, inner, output):
    """assay.load(path=...) said "No cached artifact matches path" for the folder a PathRef
    or get_dir() cacher wrote, a file in it, and a cacher's file in its subdir: it only
    looked for sidecars beside the path."""
    folder = _folders_experiment(tmp_path)

    loaded = assay.load(path=folder / inner, project_root=tmp_path)

    if output == "model":
        assert loaded == {"w": 0.5}
    else:
        assert Path(loaded).name == "checkpoint"
        assert (Path(loaded) / "weights.txt").read_text() == "0.5"


def test_load_by_path_still_names_the_outputs_of_a_stage_folder(tmp_path: Path):
    folder = _folders_experiment(tmp_path)

    assert assay.load("model", path=folder, project_root=tmp_path) == {"w": 0.5}
    with pytest.raises(CacheError, match="2 cached artifacts match"):
        assay.load(path=folder, project_root=tmp_path)


# -- extra_metadata keeps numpy numbers as numbers -----------------------------------------


class _LabelsCacher(Cacheable):
    """Keeps the number of classes (an ``np.int64``) in its metadata, and uses it to load."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, extension=".npy", **kwargs)

    def save(self, obj):
        self.extra_metadata["n_classes"] = obj.max() + 1
        self.extra_metadata["counts"] = np.bincount(obj)
        np.save(self.get_path(), obj)

    def load(self):
        labels = np.load(self.get_path())
        assert labels.max() < self.extra_metadata["n_classes"]
        return labels, self.extra_metadata


def test_numpy_numbers_in_extra_metadata_come_back_as_numbers(tmp_path: Path):
    """The sidecar wrote anything JSON lacks as its text: an np.int64 came back to load()
    as "3", and the comparison above failed, on the very run that saved it."""

    @assay.stage(outputs=["labels"], cachers=[_LabelsCacher])
    def label(record):
        return np.array([0, 2, 1, 2])

    manager = assay.ArtifactManager("cachers_s34_extra", project_root=tmp_path)
    labels, extra = label(assay.Record(manager, Params(name="p"))).state["labels"]

    assert labels.tolist() == [0, 2, 1, 2]
    assert extra["n_classes"] == 3 and isinstance(extra["n_classes"], int)
    assert extra["counts"] == [1, 1, 2]


# -- a sidecar that lists no file ----------------------------------------------------------


def test_a_sidecar_listing_no_file_is_damaged_and_its_pickle_never_loaded(tmp_path: Path):
    """A sidecar whose "files" was emptied passed as sound: with nothing to check, the
    pickle beside it was unpickled unchecked, by a run and by assay.load."""
    cache = CacheStore(tmp_path / "cache")
    save(cache, [1, 2], PickleCacher(name="obj"))
    proof = tmp_path / "proof.txt"
    (cache.stage_dir(KEY_A) / "obj.pkl").write_bytes(pickle.dumps(_Planted(proof)))
    sidecar = Path(cache.meta_path(KEY_A, "obj"))
    record = json.loads(sidecar.read_text())
    record["files"] = []
    sidecar.write_text(json.dumps(record))

    with pytest.raises(CacheError, match="lists no file"):
        cache.load(PickleCacher(name="obj"), KEY_A, "obj")
    with pytest.raises(CacheError, match="lists no file"):
        cache.entry(KEY_A, "obj")

    assert not proof.exists()


# -- assay.load with a cacher class defined inside another class ----------------------------


class Formats:
    """Cachers grouped in a class, as some projects keep them."""

    class Text(Cacheable):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, extension=".txt", **kwargs)

        def save(self, obj):
            Path(self.get_path()).write_text(str(obj))

        def load(self):
            return int(Path(self.get_path()).read_text())


def test_load_by_name_re_creates_a_cacher_class_nested_in_another(tmp_path: Path):
    """The sidecar names the class test_cachers_s34.Formats.Text; assay.load imported
    "test_cachers_s34.Formats" as a module and said the class "cannot be imported here"
    (run from the project folder), though it can."""

    @assay.stage(outputs=["count"], cachers=[Formats.Text])
    def count(record):
        return 41

    manager = assay.ArtifactManager("cachers_s34_nested", project_root=tmp_path)
    count(assay.Record(manager, Params(name="p")))

    assert assay.load("count", experiment="cachers_s34_nested", project_root=tmp_path) == 41


def test_load_by_name_says_why_a_cacher_class_made_in_a_function_cannot_be_used(tmp_path):
    def text_cacher():
        class Local(Formats.Text):
            pass

        return Local

    @assay.stage(outputs=["count"], cachers=[text_cacher()])
    def count(record):
        return 41

    manager = assay.ArtifactManager("cachers_s34_local", project_root=tmp_path)
    count(assay.Record(manager, Params(name="p")))

    with pytest.raises(CacheError, match="defined inside a function"):
        assay.load("count", experiment="cachers_s34_local", project_root=tmp_path)


def test_a_file_in_a_subdir_tampered_in_the_cache_is_refused_by_hand(tmp_path: Path):
    """The sidecar was looked for beside the file only, not in the stage folder above
    a cacher's ``subdir``: such a file was loaded by hand unchecked."""
    folder = _folders_experiment(tmp_path)
    path = folder / "sub" / "model.pkl"
    assert PickleCacher(str(path)).load() == {"w": 0.5}
    proof = tmp_path / "proof.txt"
    path.write_bytes(pickle.dumps(_Planted(proof)))

    with pytest.raises(CorruptArtifactError, match="'model' of stage 'train'"):
        PickleCacher(str(path)).load()

    assert not proof.exists()


# -- a cacher's own check() reads the entry's metadata -------------------------------------


class _VersionedCacher(Cacheable):
    """Reuses an entry only if its format version, kept in extra_metadata, is current: a
    Curifactory-style check() that reads the metadata with load_metadata()."""

    seen: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, extension=".json", **kwargs)

    def save(self, obj):
        self.extra_metadata["version"] = 2
        Path(self.get_path()).write_text(json.dumps(obj))

    def load(self):
        return json.loads(Path(self.get_path()).read_text())

    def check(self):
        if not Path(self.get_path()).exists():
            return False
        self.load_metadata()
        _VersionedCacher.seen.append(dict(self.extra_metadata))
        return self.extra_metadata.get("version") == 2


def test_a_check_reading_the_metadata_lets_the_entry_be_reused(tmp_path: Path):
    """check() ran with no metadata (load_metadata() read nothing while assay drove the
    cacher): the version was never found, and the stage executed on every run."""
    calls: list[str] = []
    _VersionedCacher.seen = []

    def run_once():
        @assay.stage(outputs=["table"], cachers=[_VersionedCacher])
        def tabulate(record):
            calls.append(record.params.name)
            return {"rows": 3}

        manager = assay.ArtifactManager("cachers_s34_check", project_root=tmp_path)
        return tabulate(assay.Record(manager, Params(name="p"))).state["table"]

    assert run_once() == {"rows": 3}
    assert run_once() == {"rows": 3}

    assert calls == ["p"]
    assert _VersionedCacher.seen == [{"version": 2}]
