"""Cachers as a researcher's stages use them: session 34 fixes."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import assay
from assay.cache import CacheStore
from assay.caching import JsonCacher, NumpyCacher, PandasParquetCacher, PickleCacher
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


def test_a_cacher_used_by_hand_still_loads_a_file_outside_the_cache(tmp_path: Path):
    path = tmp_path / "mine.pkl"
    PickleCacher(str(path)).save([1, 2, 3])

    assert PickleCacher(str(path)).load() == [1, 2, 3]
