"""A subclass of the parameter class that was not decorated with @dataclass."""

from experiments.good import Params


class Bigger(Params):
    depth: int = 5


def get_params():
    deep = Bigger(name="deep")
    deep.depth = 99
    return [Bigger(name="shallow"), deep]
