"""Feature helpers; `transform` imports `scale`, `enrich` calls `f.shift`."""

SHIFT = 10


def scale(values, params):
    """Multiply every value by the parameter set's factor."""
    return [x * params.factor for x in values]


def shift(values):
    """Add SHIFT to every value."""
    return [x + SHIFT for x in values]


def normalize(values):
    """Used by no stage."""
    top = max(values)
    return [x / top for x in values]
