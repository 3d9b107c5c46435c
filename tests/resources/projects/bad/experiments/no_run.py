"""An experiment module that forgot its run() function."""

from experiments.good import get_params  # noqa: F401
