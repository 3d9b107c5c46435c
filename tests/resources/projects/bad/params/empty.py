"""No parameter sets at all."""


def get_params():
    return []
