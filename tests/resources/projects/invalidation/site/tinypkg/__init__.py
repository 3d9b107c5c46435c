"""A stand-in for an installed third-party package."""


def triple(x):
    return 3 * x
