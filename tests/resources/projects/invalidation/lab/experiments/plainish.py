"""Module constants that are data, though not of the usual kinds: a compiled pattern, a
namespace, a read-only mapping, an object that says how to hash it, a decimal and a
fraction."""

import decimal
import fractions
import re
import types
from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher

WORD = re.compile(r"a+")
NS = types.SimpleNamespace(k=2)
PROXY = types.MappingProxyType({"k": 2})
RATE = decimal.Decimal("1.5")
SHARE = fractions.Fraction(1, 3)


class Tokenizer:
    def __init__(self, lower):
        self.lower = lower

    def __assay_hash__(self):
        return self.lower


TOKENIZER = Tokenizer(lower=True)


@dataclass
class Params(assay.ExperimentParameters):
    text: str = "aaa bab"


def stage(name):
    return assay.stage(outputs=[name], cachers=[JsonCacher])


@stage("words")
def words(record):
    note(record, "words")
    return WORD.findall(record.params.text)


@stage("spaced")
def spaced(record):
    note(record, "spaced")
    return NS.k * 10


@stage("mapped")
def mapped(record):
    note(record, "mapped")
    return PROXY["k"] * 10


@stage("tokens")
def tokens(record):
    note(record, "tokens")
    text = record.params.text
    return text.lower() if TOKENIZER.lower else text


@stage("rated")
def rated(record):
    note(record, "rated")
    return str(RATE * 2)


@stage("shared")
def shared(record):
    note(record, "shared")
    return str(SHARE * 3)


def get_params():
    return [Params(name="p", text="aaa BAB")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        for each in (words, spaced, mapped, tokens, rated, shared):
            each(record)
