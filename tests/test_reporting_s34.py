"""``JsonReporter`` shows numpy numbers and arrays as JSON numbers and lists.

It showed ``np.int64(3)`` as the text ``"3"`` and an array as ``"[0 1 2]"`` (what
``str`` gives), so a score computed with numpy looked like a string in the report.
"""

from __future__ import annotations

import html
import json

import numpy as np

from assay.reporting import JsonReporter


def shown(data: object) -> object:
    """The JSON a ``JsonReporter`` of ``data`` shows, read back."""
    text = JsonReporter(data, name="scores").html()
    assert text.startswith("<pre>") and text.endswith("</pre>")
    return json.loads(html.unescape(text[len("<pre>") : -len("</pre>")]))


def test_numpy_numbers_and_arrays_are_json_numbers_and_lists() -> None:
    data = {
        "n": np.int64(3),
        "accuracy": np.float32(0.5),
        "converged": np.bool_(True),
        "folds": np.arange(3),
        "matrix": np.eye(2, dtype=np.int8),
    }
    assert shown(data) == {
        "n": 3,
        "accuracy": 0.5,
        "converged": True,
        "folds": [0, 1, 2],
        "matrix": [[1, 0], [0, 1]],
    }


def test_other_values_are_shown_as_text() -> None:
    class Model:
        def __str__(self) -> str:
            return "Model(depth=3)"

    assert shown({"model": Model(), "day": np.datetime64("2020-01-02")}) == {
        "model": "Model(depth=3)",
        "day": "2020-01-02",
    }
