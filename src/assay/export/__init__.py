"""Taking a run elsewhere: full exports, reproduction, Docker images and notebooks.

- :mod:`assay.export.full` — ``assay run ... --store-full``: one self-contained
  folder ``data/runs/RUN_ID/`` with the run record, log, report, the cache
  entries the run used, the pinned environment and a snapshot of the code.
- :mod:`assay.export.snapshot` — which files of the project go into a code
  snapshot (never secrets or what git ignores, unless asked), and the
  ``requirements.txt`` / ``environment.yml`` of a run.
- :mod:`assay.export.reproduce` — ``assay reproduce FOLDER``: re-run an
  exported run in a fresh folder and compare every artifact.
- :mod:`assay.export.differences` — how two versions of an artifact differ,
  in words (tables, arrays, JSON).
- :mod:`assay.export.docker` — ``assay export docker RUN``: a build context
  and Dockerfile that re-creates the run's environment.
- :mod:`assay.export.notebook` — ``assay export notebook RUN``: a Jupyter
  notebook that reloads the run's artifacts and can re-run it.
- :mod:`assay.export.destination` — where an export may write: only new or
  empty places, or what assay wrote itself (recognised by a marker), never a
  folder holding the project; anything else is refused before a byte is written.

Every path written into an exported folder is relative to that folder, so it
can be copied, zipped or mailed as it is.
"""

from __future__ import annotations
