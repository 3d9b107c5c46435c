"""One stage per way of reaching a helper; editing a helper must recompute its stage only.

Every stage reads `n` and uses one helper of lib/extras.py:

- `local`: imported inside the stage's body;
- `memo`: decorated with functools.cache;
- `decorated`: decorated with a project decorator (functools.wraps);
- `dispatch`: found in a module-level dict;
- `nested`: called from a function nested in the stage, through `extras.halve`;
- `methods`: a classmethod and a staticmethod of a project class.
"""

import lib.extras as extras
from lib.extras import OPS, Builder, cube, lookup
from tracking import note

import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["local"], cachers=[JsonCacher])
def local(record):
    note(record, "local")
    from lib.extras import offset_of

    return offset_of(record.params.n)


@assay.stage(outputs=["memo"], cachers=[JsonCacher])
def memo(record):
    note(record, "memo")
    return lookup(record.params.n)


@assay.stage(outputs=["decorated"], cachers=[JsonCacher])
def decorated(record):
    note(record, "decorated")
    return cube(record.params.n)


@assay.stage(outputs=["dispatch"], cachers=[JsonCacher])
def dispatch(record):
    note(record, "dispatch")
    return OPS["negate"](record.params.n)


@assay.stage(outputs=["nested"], cachers=[JsonCacher])
def nested(record):
    note(record, "nested")

    def inner(x):
        return extras.halve(x)

    return inner(record.params.n)


@assay.stage(outputs=["methods"], cachers=[JsonCacher])
def methods(record):
    note(record, "methods")
    return Builder.make(record.params.n) + Builder.twice(record.params.n)


STAGES = (local, memo, decorated, dispatch, nested, methods)


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        for step in STAGES:
            step(record)
