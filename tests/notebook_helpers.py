"""Run a notebook as Jupyter would, for tests of the notebooks assay writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def execute_notebook(
    notebook: Any, folder: Path, timeout: float = 180, allow_errors: bool = False
) -> str:
    """Run every cell of ``notebook`` (read with nbformat) in a fresh Python kernel working
    in ``folder``, filling in its outputs; return the text of every code cell's outputs, one
    per line. Raises ``CellExecutionError`` if a cell fails (with ``allow_errors``, goes on
    to the next cell as "Run All" with errors allowed does; the error is in the text).

    Set ``JUPYTER_PLATFORM_DIRS=1`` in the test (``monkeypatch.setenv``) first, as Jupyter
    asks of new installations."""
    nbclient = pytest.importorskip("nbclient")
    client = nbclient.NotebookClient(
        notebook, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(folder)}}, allow_errors=allow_errors,
    )  # fmt: skip
    client.execute()
    return "\n".join(
        output.get("text") or output.get("data", {}).get("text/plain", "")
        or f"{output.get('ename', '')}: {output.get('evalue', '')}"
        for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )  # fmt: skip
