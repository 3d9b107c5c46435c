"""A function's source, read from its code object (``assay.sourcetext``).

It must read every function as :func:`inspect.getsource` does, up to what
follows its last instruction (comments, unreachable lines), and leave to
inspect whatever it cannot place.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
import textwrap
import types
from pathlib import Path

import pytest

import assay
from assay.sourcetext import (
    _from_code,
    normalized_expression,
    normalized_source,
    source_and_tree,
)
from conftest import on_sys_path

MODULE = "assay_user_sourcetext_helper"

# Python 3.10's code objects hold no line spans: every definition is read by inspect there.
NEEDS_POSITIONS = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="Python 3.10 code objects hold no positions"
)


def functions_of(module: types.ModuleType):
    """The functions and methods defined in ``module``, and functions nested in them."""
    seen: set[int] = set()

    def walk(namespace):
        for value in list(vars(namespace).values()):
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                yield from (f.__code__ for f in (value.fget, value.fset) if hasattr(f, "__code__"))
            elif isinstance(value, types.FunctionType) and id(value) not in seen:
                seen.add(id(value))
                yield value.__code__
                yield from (
                    c
                    for c in value.__code__.co_consts
                    if isinstance(c, types.CodeType) and not c.co_name.startswith("<")
                )
            elif (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and id(value) not in seen
            ):
                seen.add(id(value))
                yield from walk(value)

    yield from walk(module)


@NEEDS_POSITIONS
def test_every_function_of_assay_and_of_some_standard_modules_reads_as_inspect_reads_it():
    modules = [importlib.import_module(n) for n in ("json", "argparse", "dataclasses", "pathlib")]
    for found in pkgutil.walk_packages(assay.__path__, "assay."):
        if not found.name.endswith("__main__"):
            modules.append(importlib.import_module(found.name))
    placed = left = 0
    for module in modules:
        for code in functions_of(module):
            try:
                expected = ast.unparse(ast.parse(textwrap.dedent(inspect.getsource(code))))
            except (OSError, TypeError, SyntaxError):
                continue
            found = _from_code(code)
            if found is None:
                left += 1
                continue
            placed += 1
            assert ast.unparse(found[1]) == expected, f"{code.co_filename}:{code.co_firstlineno}"
    assert placed > 1000 and left < placed / 50, (placed, left)


@pytest.fixture
def helper(tmp_path: Path):
    """Import ``TEXT`` as a module from a file: ``helper(TEXT)``."""

    def load(text: str) -> types.ModuleType:
        (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(text))
        sys.modules.pop(MODULE, None)
        return importlib.import_module(MODULE)

    with on_sys_path(tmp_path, MODULE):
        yield load


@NEEDS_POSITIONS
def test_a_function_is_read_from_its_decorator_to_its_last_instruction(helper, monkeypatch):
    module = helper('''
        import functools


        @functools.lru_cache
        def scale(x,
                  factor=2):
            """Docstring."""
            total = {"x": x,
                     "factor": factor}
            return total["x"] * (
                total["factor"]
            )
            # a comment after the last line
            print("never runs")


        def after():
            return 0
    ''')
    monkeypatch.setattr(inspect, "getsource", None)  # not needed for this one
    source, tree = source_and_tree(module.scale.__wrapped__.__code__)
    assert source.startswith("@functools.lru_cache\ndef scale(x,\n")
    assert source.endswith('        total["factor"]\n    )\n')
    assert "comment" not in source and "never runs" not in source
    assert isinstance(tree.body[0], ast.FunctionDef) and tree.body[0].name == "scale"


def test_what_the_code_object_cannot_place_is_read_by_inspect(helper):
    module = helper('''
        square = lambda x: x * x


        def only_a_docstring():
            """Nothing else."""


        class Box:
            size = 3
    ''')
    for obj, expected in (
        (module.square, "square = lambda x: x * x\n"),
        (module.only_a_docstring, 'def only_a_docstring():\n    """Nothing else."""\n'),
        (module.Box, "class Box:\n    size = 3\n"),
    ):
        assert _from_code(getattr(obj, "__code__", None) or compile("", "x", "exec")) is None
        source, _tree = source_and_tree(obj)
        assert source == expected


def test_code_without_a_file_raises_as_inspect_does():
    namespace: dict = {}
    exec("def typed_in():\n    return 1\n", namespace)
    with pytest.raises(OSError):
        source_and_tree(namespace["typed_in"])


def test_code_recompiled_from_other_text_is_keyed_by_itself_not_by_its_file(helper, tmp_path):
    """IPython 9's ``%autoreload 2`` recompiles an edited function and puts the new code
    in the old function, naming the file and line 1. The file's first block (its
    docstring) was read as the function's source, so every later version had one key
    and the first edit's cached result came back for all of them."""
    from assay.codeprint import Fingerprinter

    module = helper('''
        """A helper module."""


        def bump(v):
            return v + 1
    ''')
    keys = []
    for body in ("v + 100", "v + 200", "v + 100"):
        text = f"def bump(v):\n    return {body}\n"
        compiled = compile(text, module.__file__, "exec")  # what autoreload compiles
        module.bump.__code__ = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
        with pytest.raises(OSError, match="not at"):
            source_and_tree(module.bump)
        keys.append(Fingerprinter(tmp_path).fingerprint(module.bump)[0])
    assert keys[0] != keys[1] and keys[0] == keys[2]


def test_a_file_edited_since_it_was_first_read_is_read_again(helper):
    first = helper("def f():\n    return 1\n")
    assert "return 1" in source_and_tree(first.f)[0]
    again = helper("def f():\n    return 1000\n")  # imported anew, as after an edit
    assert "return 1000" in source_and_tree(again.f)[0]


def test_a_stage_that_puts_values_in_the_state_by_hand_is_told_apart(helper):
    """On workers, a record's later stages start after such a stage (test_parallel)."""
    from assay.staging import writes_record_state

    module = helper("""
        def sets(record):
            record.state["n"] = 1
            return 2

        def adds(r):
            r.state["n"] += 1

        def through_a_name(record):
            state = record.state
            state["n"] = 1

        def updates(record):
            record.state.update(n=1)

        def deletes(record):
            del record.state["n"]

        def in_a_nested_function(record):
            def put(x):
                record.state["n"] = x
            put(1)

        def reads(record, data):
            return record.state["n"] + record.state.get("m", 0)

        def another_records(record, records):
            records[0].state["n"] = 1
    """)

    found = {name: writes_record_state(getattr(module, name)) for name in vars(module)
             if not name.startswith("_")}  # fmt: skip
    assert found == {
        "sets": True,
        "adds": True,
        "through_a_name": True,
        "updates": True,
        "deletes": True,
        "in_a_nested_function": True,
        "reads": False,
        "another_records": False,
    }
    assert writes_record_state(lambda record: record.state.update(n=1)) is False  # not read


def test_normalized_text_has_no_comments_docstrings_or_layout():
    """What stage code and functions held in values are compared by."""

    def documented(x, k):
        """Scale."""
        return (x *  # a comment
                k)  # fmt: skip

    text, tree = normalized_source(documented)
    assert text == "def documented(x, k):\n    return x * k"
    assert ast.get_docstring(tree.body[0]) is None
    assert normalized_expression("x*2") == "x * 2"
    assert normalized_expression("lambda x: (x  # one\n  + 1)") == "lambda x: x + 1"
    assert normalized_expression("x +") == "x +"  # not an expression: as it was, stripped
