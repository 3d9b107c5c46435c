"""The benchmark sections of issue 3, one module each, run in this order.

Each module has ``run(ctx) -> Section``; ``ctx`` says whether this is the
``--quick`` run and how to start workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.harness import Workers


@dataclass
class Context:
    """What every section needs."""

    quick: bool
    workers: Workers
    say: Callable[[str], None]

    def reps(self, full: int, quick: int) -> int:
        """How many repetitions: ``full`` normally, ``quick`` with ``--quick``."""
        return quick if self.quick else full


ORDER = [
    "overhead", "artifacts", "hashing", "startup", "parallel", "remote", "memory", "profile",
]  # fmt: skip
"""Section names for ``--only``; ``profile`` runs only in a full run (or when named)."""
