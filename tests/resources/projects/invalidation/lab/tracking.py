"""Note every real stage call, and read flag files (as in the ``basic`` project).

``note(record, "stage")`` appends ``stage:parameter-set`` to ``calls.txt`` in the
project root; ``flag(record, "x")`` is true while ``x.flag`` exists there.
"""

from pathlib import Path


def note(record, stage):
    root = Path(record.manager.config.root)
    with open(root / "calls.txt", "a") as handle:
        handle.write(f"{stage}:{record.name}\n")


def flag(record, name):
    return (Path(record.manager.config.root) / f"{name}.flag").exists()
