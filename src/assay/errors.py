"""Every error assay raises on purpose, and what it means.

Errors caused by the researcher's input (a broken parameter file, a stage
whose outputs do not match its declaration, a corrupt cache file, ...) derive
from :class:`AssayError`. The command line prints their message as one
paragraph without a traceback (unless ``--debug`` is given)::

    AssayError
    ├── ConfigError               bad project configuration or layout
    ├── ProjectError              an experiment or parameter file cannot be used
    ├── ParameterError            bad parameter sets, overrides or grids (also a
    │   │                         RuntimeError, as Curifactory raises there)
    │   └── UnknownStageError     --overwrite-stage names no stage of the run
    ├── NoArtifactManagerError    a Procedure run without a manager (also a ValueError)
    ├── StageError                a stage is declared or called wrongly
    │   ├── InputSignatureError   a stage's function does not fit its declared inputs
    │   │   └── MissingInputError an input no earlier stage produced (also a KeyError)
    │   ├── OutputSignatureError  outputs returned do not match ``outputs``
    │   ├── CachersMismatchError  ``cachers`` and ``outputs`` differ in length
    │   ├── EmptyCachersError     ``cachers=[]`` on a stage without outputs
    │   └── PlanningError         the run cannot be planned (two stages share a name, ...)
    │       └── PlanStops         a --dry plan meets a read of a result that is not cached
    ├── StageFailed               a stage raised while it ran (wraps the original, and is
    │                             also an instance of its type: `except ValueError` works)
    ├── CacheError                an artifact cannot be saved, found or loaded
    │   └── CorruptArtifactError  a cache file does not match its recorded checksum
    └── RunStoreError             the run store (``assay.db``) cannot be read

The Curifactory names (``InputSignatureError`` and the like) keep their meaning,
so ``except`` clauses written for Curifactory keep working.
"""

from __future__ import annotations

import types


class AssayError(Exception):
    """Base class of every error assay raises about the researcher's input."""


class Terminated(KeyboardInterrupt):
    """The run was sent SIGTERM (a batch system's time limit, ``kill``).

    It stops the run as Ctrl-C does: workers are stopped, the run is recorded
    as interrupted, and finished stages stay cached.
    """


def stop_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """A fresh copy of the Ctrl-C or SIGTERM that ``exc`` came from, to raise from
    ``exc``; None if it came from neither.

    A signal raises its ``KeyboardInterrupt`` wherever the process is, and Python
    wraps some places' exceptions in another: one raised while a class body's
    ``__set_name__`` runs (as an import defines classes) arrives as a
    ``RuntimeError`` caused by it. Such an error is the stop, not a failure.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return type(current)(*current.args)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class ConfigError(AssayError):
    """The project's configuration (``assay.toml`` / ``[tool.assay]``) is invalid."""


class ProjectError(AssayError):
    """An experiment or parameter file is missing, broken, or lacks what it needs."""


class ParameterError(AssayError, RuntimeError):
    """Parameter sets are invalid: duplicate names, unknown fields, bad overrides.

    It is also a ``RuntimeError``, the exception Curifactory raises for a parameter
    set name that no parameter file has, so ``except RuntimeError`` written for
    Curifactory keeps working.
    """


class UnknownStageError(ParameterError):
    """``--overwrite-stage`` (``overwrite_stages=``) names a stage that the run does not
    call: it would recompute nothing. The command line says it as a usage error."""


class NoArtifactManagerError(AssayError, ValueError):
    """A :class:`~assay.Procedure` was run without a manager (Curifactory's name, also
    reachable as ``assay.procedure.NoArtifactManagerError``)."""


class StageError(AssayError):
    """A stage is declared or called in a way that cannot work."""


class InputSignatureError(StageError):
    """A stage's function does not fit its declared inputs, or (as
    :class:`MissingInputError`) an input is missing from the record."""


class MissingInputError(InputSignatureError, KeyError):
    """A stage needs an input that no earlier stage on the record produced.

    It is also a ``KeyError``, the exception Curifactory raises here, so
    ``except KeyError`` written for Curifactory keeps working.
    """

    __str__ = Exception.__str__  # the message as written, not quoted as KeyError's are


class OutputSignatureError(StageError):
    """A stage returned a different number of values than it declared in ``outputs``."""


class CachersMismatchError(StageError):
    """A stage's ``cachers`` list does not have one entry per output."""


class EmptyCachersError(StageError):
    """A stage without outputs was given ``cachers=[]`` (with outputs, ``cachers=[]`` is a
    :class:`CachersMismatchError`, as in Curifactory)."""


class PlanningError(StageError):
    """The run cannot be planned: two different stages share a name, or a plan made
    without executing (``--dry``) meets a read of an output that is not cached."""


class PlanStops(PlanningError):
    """A plan made without executing stops where ``run()`` reads a result that is not
    cached (what ``run()`` does next depends on it); the plan so far stands."""


class StageFailed(AssayError):
    """A stage raised an exception while running.

    Attributes:
        stage: the stage's name.
        record_name: the parameter set's name (or ``"aggregate"``).
        original: the exception the stage raised.
    """

    def __init__(self, message: str, *, stage: str, record_name: str, original: BaseException):
        Exception.__init__(self, message)
        self.stage = stage
        self.record_name = record_name
        self.original = original

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    @classmethod
    def of(
        cls,
        message: str,
        *,
        stage: str,
        record_name: str,
        original: BaseException,
        original_type: type | None = None,
        attributes_from: BaseException | None = None,
    ) -> StageFailed:
        """The ``StageFailed`` for ``original``, which is also an instance of the stage's
        own exception type (``original_type``, by default ``type(original)``).

        So ``except ValueError`` around ``run_experiment`` catches a stage's
        ``ValueError``, as it does with Curifactory, whose stages' exceptions arrive as
        they were raised. The original's attributes (or those of ``attributes_from``:
        a worker's exception sent back) are copied onto it, also those Python keeps
        outside ``__dict__`` (``OSError.errno``, ``UnicodeError.reason``...). Where
        Python cannot combine the two types, it is a plain ``StageFailed``.
        """
        kind = _failed_type(original_type or type(original))
        if kind is None:
            return cls(message, stage=stage, record_name=record_name, original=original)
        failed = kind.__new__(kind, message)
        _copy_attributes(attributes_from or original, failed)
        StageFailed.__init__(failed, message, stage=stage, record_name=record_name,
                             original=original)  # fmt: skip
        return failed

    def __reduce__(self) -> tuple:  # a plain StageFailed once pickled
        return (
            _rebuilt_stage_failed,
            (str(self), self.stage, self.record_name, self.original),
        )


_OWN = frozenset(
    {"args", "__traceback__", "__context__", "__cause__", "__suppress_context__", "__notes__"}
)


def _copy_attributes(source: BaseException, target: BaseException) -> None:
    """``source``'s attributes onto ``target``: its ``__dict__``, and the fields exception
    types written in C keep in slots of their own."""
    try:
        target.__dict__.update(vars(source))
    except TypeError:  # an exception without a __dict__
        pass
    for cls in type(source).__mro__:
        if cls is BaseException or not issubclass(cls, BaseException):
            break
        for name, attribute in vars(cls).items():
            if name in _OWN or not isinstance(
                attribute, (types.MemberDescriptorType, types.GetSetDescriptorType)
            ):
                continue
            try:
                setattr(target, name, getattr(source, name))
            except (AttributeError, TypeError, ValueError):  # unset, or read-only here
                pass


def _rebuilt_stage_failed(
    message: str, stage: str, record_name: str, original: BaseException
) -> StageFailed:
    return StageFailed.of(message, stage=stage, record_name=record_name, original=original)


_FAILED_TYPES: dict[type, type | None] = {}


def _failed_type(kind: type) -> type | None:
    """``StageFailed`` combined with the exception type ``kind``, or ``None``."""
    if kind in _FAILED_TYPES:
        return _FAILED_TYPES[kind]
    combined = None
    if (
        isinstance(kind, type)
        and issubclass(kind, Exception)
        and not issubclass(kind, AssayError)
        and kind.__module__ != "assay.remote"  # a worker's exception of unknown type
    ):
        try:
            combined = type(
                f"StageFailed[{kind.__name__}]",
                (StageFailed, kind),
                {"__module__": __name__, "__doc__": StageFailed.__doc__},
            )
            combined.__new__(combined, "probe")  # a type whose __new__ needs its own args
        except Exception:
            combined = None
    _FAILED_TYPES[kind] = combined
    return combined


class CacheError(AssayError):
    """An artifact could not be saved to, found in, or loaded from the cache."""


class CorruptArtifactError(CacheError):
    """A cache file's checksum or size differs from its metadata sidecar."""


class RunStoreError(AssayError):
    """The run store (``assay.db``) is missing, locked, or not an assay run store."""
