"""``ArtifactManager`` refuses a name that cannot name a run, before anything runs.

``assay.Manager(5)`` or ``assay.Manager("   ")`` ran and cached every stage (under
``by-name/5``), then ``generate_report()`` failed: "Cannot record a run without an
experiment name (got 5)". An empty name still means the default, as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import assay
from assay.errors import ProjectError


@pytest.mark.parametrize(
    "arguments",
    [{"experiment_name": 5}, {"experiment_name": "   "}, {"prefix": "\t"}, {"prefix": 3.5}],
)
def test_a_name_that_names_nothing_is_refused(tmp_path: Path, arguments: dict) -> None:
    (tmp_path / "assay.toml").write_text("")
    argument = next(iter(arguments))
    with pytest.raises(ProjectError, match=f"ArtifactManager's {argument} must be a name"):
        assay.ArtifactManager(project_root=tmp_path, **arguments)
    assert not (tmp_path / "data").exists()  # refused before it made anything


def test_empty_or_missing_names_are_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "assay.toml").write_text("")
    manager = assay.ArtifactManager("", project_root=tmp_path, prefix="")
    assert (manager.experiment_name, manager.prefix) == ("interactive", "interactive")
    named = assay.ArtifactManager("iris", project_root=tmp_path, prefix="shared")
    assert (named.experiment_name, named.prefix) == ("iris", "shared")
