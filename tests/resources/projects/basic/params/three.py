"""Three sets that differ in scale and offset (for `assay params`)."""

from experiments.diamond import Params


def get_params():
    return [
        Params(name="a", scale=1),
        Params(name="b", scale=2),
        Params(name="c", scale=2, offset=5),
    ]
