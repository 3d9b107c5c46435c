"""A parameter file that raises while it is imported (line 6)."""

from experiments.good import Params

SETS = [Params(name="one")]
raise RuntimeError("the parameter file is broken on purpose")
