"""Two fast configurations for a smoke test, made from grid.py's: `assay run iris -p quick`."""

from dataclasses import replace

from params.grid import FOREST, LOGISTIC


def get_params():
    return [
        replace(LOGISTIC, name="quick-logistic"),
        replace(FOREST, name="quick-forest", n_estimators=10, max_depth=3),
    ]
