"""Helpers the test experiments share: note every real stage call, and read flag files.

Each stage calls ``note(record, "stage")``, which appends ``stage:parameter-set``
to ``calls.txt`` in the project root, so a test (in this process or driving the
CLI in a subprocess) can count which stages really executed. ``flag(record,
"fail")`` is true while ``fail.flag`` exists in the project root; tests create
and delete flags to make a stage misbehave on one run only.
"""

from pathlib import Path


def note(record, stage):
    root = Path(record.manager.config.root)
    with open(root / "calls.txt", "a") as handle:
        handle.write(f"{stage}:{record.name}\n")


def flag(record, name):
    return (Path(record.manager.config.root) / f"{name}.flag").exists()
