"""Curifactory's names for :func:`assay.run_experiment`'s arguments.

A script written for Curifactory calls
``run_experiment("iris", ["base"], param_set_names=["big"], stage_overwrites=["train"],
overwrite_override=False, log=True, no_dag=True)``. With ``import assay as cf`` the same
call runs: each Curifactory name is translated to assay's (``param_set_names`` →
``names``, ``stage_overwrites`` → ``overwrite_stages``, ...), names for Curifactory's
own console and process machinery are accepted and change nothing, and the few that
assay does differently say what to use instead.

Differences kept on purpose: ``param_set_indices`` index the combined list of
parameter sets, as ``global_param_set_indices`` do (in Curifactory they index each
parameter file's list; the same with one file), and the call returns the manager
rather than ``(results, manager)``: the results are ``manager.results``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from assay.errors import ParameterError

__all__ = ["parse_indices", "translate_run_arguments"]

RENAMED = {
    "experiment_name": "experiment",
    "param_set_names": "names",
    "param_set_indices": "indices",
    "global_param_set_indices": "indices",
    "stage_overwrites": "overwrite_stages",
    "overwrite_override": "overwrite",
    "cache_dir_override": "cache_dir",
    "run_string": "command",
    "log": "log_file",
    "log_debug": "verbose",
    "build_notebook": "notebook",
    "build_docker": "docker",
}
"""Curifactory's name → assay's, for arguments that mean the same."""

PLAN_ONLY = ("map_only", "hashes_only", "paths_only", "print_params")
"""Curifactory's modes that show something about the run and execute nothing: a dry run
here, whose manager holds the plan (``.plan``), the artifacts' paths and the hashes."""

NO_EFFECT = (
    "no_dag",
    "log_errors",
    "parallel_mode",
    "parallel_lock",
    "parallel_queue",
    "run_num_override",
    "run_ts_override",
    "no_color",
    "quiet",
    "progress",
    "plain",
    "all_loggers",
)
"""Curifactory's console and process machinery: accepted, nothing to do here. (assay runs
as ``--no-dag`` does where ``run()`` reads a result: what it reads executes first.)"""

REFUSED = {
    "mngr": (
        "run_experiment() makes its own manager and returns it. To run stages in a manager "
        "you hold, call them on assay.Record(manager, params) (README, 'In a notebook')."
    ),
}


def translate_run_arguments(
    function: Callable, given: dict[str, Any], curifactory: dict[str, Any]
) -> dict[str, Any]:
    """``function``'s keyword arguments: those ``given`` (assay's names), with the
    ``curifactory`` ones translated in.

    Raises:
        TypeError: an unknown name, or an argument given under both names (as Python
            says for any function).
    """
    defaults = {name: p.default for name, p in inspect.signature(function).parameters.items()}
    arguments = dict(given)
    for name, value in curifactory.items():
        if name in REFUSED:
            raise TypeError(f"run_experiment() does not take {name!r}: {REFUSED[name]}")
        if name in NO_EFFECT:
            continue
        if name in PLAN_ONLY:
            target, value = "dry", bool(value) or arguments["dry"]
        elif name in RENAMED:
            target = RENAMED[name]
        else:
            raise TypeError(f"run_experiment() got an unexpected keyword argument {name!r}")
        if target == "indices" and value is not None:
            try:
                value = parse_indices(value)
            except ValueError as exc:
                raise ParameterError(f"{name}: {exc}") from None
        if target == "overwrite" and value is None:  # Curifactory's "as the sets say"
            continue
        if target != "dry" and arguments[target] != defaults[target]:
            raise TypeError(
                f"run_experiment() got {target!r} twice: as {target!r} and as "
                f"Curifactory's {name!r}. Give one of them."
            )
        arguments[target] = value
    return arguments


def parse_indices(values: Iterable[Any]) -> list[int]:
    """Positions of parameter sets: ``3``, ``"-1"``, or a range as Curifactory writes it
    (``"1-3"``: 1 and 2).

    Raises:
        ValueError: an entry that is neither (the message says how to write one).
    """
    positions: list[int] = []
    for value in values:
        text = str(value).strip()
        start, dash, end = text.lstrip("-").partition("-")
        try:
            if not dash:
                positions.append(int(text))
                continue
            first, stop = int(start), int(end)
        except ValueError:
            first = stop = 0
        if text.startswith("-") or first >= stop:
            raise ValueError(
                f"{text!r} is neither a position (3, -1) nor a range A-B with A < B "
                "(1-3 means 1 and 2, as in Curifactory)."
            )
        positions.extend(range(first, stop))
    return positions
