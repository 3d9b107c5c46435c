"""Small defects left from earlier work (session 31), each reproduced as a user meets it."""

from __future__ import annotations

from pathlib import Path

import pytest

import assay
from assay.errors import ConfigError


@pytest.mark.parametrize("argument", ["path", "cache_dir"])
def test_a_url_given_as_a_pathlib_path_is_refused_with_pass_it_as_a_string(
    tmp_project: Path, argument: str
):
    """``Path("s3://bucket/x")`` is ``s3:/bucket/x``: the refusal spoke of one slash, though
    the user wrote two, and said "the cache" for ``path=``."""
    given = {argument: Path("s3://bucket/x")}
    with pytest.raises(ConfigError) as refused:
        assay.load("model", project_root=tmp_project, **given)
    message = str(refused.value)
    assert "pathlib.Path" in message and "as a string" in message, message
    assert "'s3://bucket/x'" in message, message
    assert message.startswith("The path" if argument == "path" else "The cache"), message
    assert not (tmp_project / "s3:").exists()


def test_a_one_slash_url_string_given_as_path_is_refused_naming_path(tmp_project: Path):
    with pytest.raises(ConfigError) as refused:
        assay.load("model", path="s3:/bucket/x", project_root=tmp_project)
    message = str(refused.value)
    assert message.startswith("The path 's3:/bucket/x'") and "Correct path=" in message, message
    assert "'s3://bucket/x'" in message, message
