"""assay's benchmarks: assay against Curifactory 0.20.5 and joblib.Memory, side by side (issue 3).

Run from the repository root with the repository's venv::

    .venv/bin/python -m benchmarks            # everything; writes benchmarks/RESULTS.md
    .venv/bin/python -m benchmarks --quick    # the CI run, about 4 minutes on 2 cores
    .venv/bin/python -m benchmarks --only hashing

Layout: ``harness.py`` (venvs, fresh-process workers, statistics, the disk),
``sections/`` (one module per measured question), ``report.py`` (tables and
RESULTS.md), ``workloads/`` (the shared experiment files and the worker
scripts, which run inside the measured tool's venv). Curifactory lives in its
own venv, ``benchmarks/.venv-curifactory``, made on first use.
"""
