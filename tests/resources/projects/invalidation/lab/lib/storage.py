"""A project's own cacher, as a researcher writes one: numbers as text, one per line,
rounded by a helper."""

from assay.caching import Cacheable

DIGITS = 1


def rounded(value):
    return round(value, DIGITS)


class NumbersCacher(Cacheable):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("extension", ".txt")
        super().__init__(*args, **kwargs)

    def save(self, obj):
        path = self.get_path()
        with open(path, "w") as handle:
            handle.write("\n".join(str(rounded(x)) for x in obj))
        return path

    def load(self):
        with open(self.get_path()) as handle:
            return [float(line) for line in handle.read().split("\n")]
