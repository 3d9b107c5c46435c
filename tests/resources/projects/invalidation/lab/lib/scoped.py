"""Names that a nested scope binds, and a global of the same name used elsewhere."""


def normalize(x):
    return x / 2


def score(x):
    return x + 1


class Model:
    def normalize(self, x):  # the class binds `normalize`; the method's body reads the global
        return normalize(x)
