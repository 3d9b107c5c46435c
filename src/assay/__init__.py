"""assay: orchestrated, parameterized, cached and reproducible experiments.

Write stages as plain functions, parameter sets as dataclasses, and chain the
stages on records in an experiment; assay caches every artifact, reuses it
when nothing it depends on changed, and records how every result was made::

    import assay
    from assay.caching import PickleCacher

    @dataclass
    class Params(assay.ExperimentParameters):
        n_trees: int = 100

    @assay.stage(inputs=None, outputs=["data"], cachers=[PickleCacher])
    def load_data(record): ...

See the README for a tour. The public API is exactly what this module exports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# -- errors -----------------------------------------------------------------------
from assay.errors import (
    AssayError,
    CachersMismatchError,
    EmptyCachersError,
    InputSignatureError,
    OutputSignatureError,
)

# -- parameter sets ---------------------------------------------------------------
from assay.params import ExperimentParameters, Params, grid
from assay.record import Record

# -- stages and records -----------------------------------------------------------
from assay.staging import Lazy, aggregate, stage

if TYPE_CHECKING:
    from assay import caching, hashing, reporting
    from assay import experiment as experiment  # the submodules Curifactory code reaches
    from assay import manager as manager
    from assay import procedure as procedure
    from assay import store as store
    from assay.experiment import run_experiment
    from assay.hashing import set_hash_functions
    from assay.loading import load
    from assay.manager import ArtifactManager
    from assay.manager import ArtifactManager as Manager
    from assay.procedure import Procedure

__version__ = "0.1.0"

# What an experiment file needs is imported above; the rest (running, the run
# store, reports, loading) is imported the first time it is used, so that
# ``import assay`` stays quick in the command line and in every worker process.
# Name -> (module, attribute; None for the module itself). The submodules are
# those Curifactory's package makes reachable as attributes (``cf.experiment``).
_SUBMODULES = (
    "caching",
    "experiment",
    "hashing",
    "manager",
    "params",
    "procedure",
    "record",
    "reporting",
    "staging",
    "store",
)
_ON_FIRST_USE = {
    **{name: (f"assay.{name}", None) for name in _SUBMODULES},
    "run_experiment": ("assay.experiment", "run_experiment"),
    "set_hash_functions": ("assay.hashing", "set_hash_functions"),
    "load": ("assay.loading", "load"),
    "ArtifactManager": ("assay.manager", "ArtifactManager"),
    "Manager": ("assay.manager", "ArtifactManager"),  # short alias of ArtifactManager
    "Procedure": ("assay.procedure", "Procedure"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _ON_FIRST_USE[name]
    except KeyError:
        from assay.compat import missing_module_name

        raise missing_module_name("assay", name) from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ON_FIRST_USE))


__all__ = [
    "ArtifactManager",
    "AssayError",
    "CachersMismatchError",
    "EmptyCachersError",
    "ExperimentParameters",
    "InputSignatureError",
    "Lazy",
    "Manager",
    "OutputSignatureError",
    "Params",
    "Procedure",
    "Record",
    "aggregate",
    "caching",
    "grid",
    "hashing",
    "load",
    "reporting",
    "run_experiment",
    "set_hash_functions",
    "stage",
]
