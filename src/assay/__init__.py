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

# -- submodules researchers reach through the package (as in Curifactory) ---------
from assay import caching, hashing, reporting

# -- errors -----------------------------------------------------------------------
from assay.errors import (
    AssayError,
    CachersMismatchError,
    EmptyCachersError,
    InputSignatureError,
    OutputSignatureError,
)
from assay.experiment import run_experiment
from assay.hashing import set_hash_functions
from assay.loading import load
from assay.manager import ArtifactManager

# -- parameter sets ---------------------------------------------------------------
from assay.params import ExperimentParameters, Params, grid
from assay.procedure import Procedure
from assay.record import Record

# -- stages, records and runs -----------------------------------------------------
from assay.staging import Lazy, aggregate, stage

Manager = ArtifactManager
"""Short alias of :class:`ArtifactManager`."""

__version__ = "0.1.0"

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
