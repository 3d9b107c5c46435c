"""A model class of the project; the `fit` stage instantiates it."""


class Model:
    """Predicts `rate * x - 1`."""

    def __init__(self, rate, jobs=1):
        self.rate = rate
        self.jobs = jobs

    def predict(self, values):
        """One prediction per value."""
        return [self.rate * x - 1 for x in values]
