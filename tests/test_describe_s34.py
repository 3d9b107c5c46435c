"""A parameter value shown by a repr holding a memory address shows a digest instead.

``assay compare`` of two runs of the same set listed ``rng='Generator(PCG64) at
0x7F…'`` as a difference: the address changes with every run. The digest of the
value's content stands in for it, so equal values show alike and others differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import assay
from assay.params import describe


@dataclass
class Params(assay.ExperimentParameters):
    rng: object = None


class Plain:
    def __init__(self, size: int) -> None:
        self.size = size


def test_addresses_are_replaced_by_a_digest_of_the_value() -> None:
    first = describe(Params(name="a", rng=np.random.default_rng(1)))["rng"]
    again = describe(Params(name="a", rng=np.random.default_rng(1)))["rng"]
    other = describe(Params(name="a", rng=np.random.default_rng(2)))["rng"]
    assert first == again and first != other
    assert first.startswith("Generator(PCG64) #") and "0x" not in first
    plain = describe(Params(name="a", rng=Plain(3)))["rng"]
    assert plain.startswith("<test_describe_s34.Plain object #") and "0x" not in plain
    assert plain == describe(Params(name="a", rng=Plain(3)))["rng"]
    assert plain != describe(Params(name="a", rng=Plain(4)))["rng"]
