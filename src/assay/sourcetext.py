"""A function's source text, found from its code object.

assay reads the source of every stage function (and of the project's functions
it calls) when it plans a run, to key the cache on the code. Python's
:func:`inspect.getsource` is slow the first time a process calls it, about
10 ms: it looks for the function's module among every imported module (the
real path of each one's file) and finds where the definition ends with the
pure-Python tokenizer, whose patterns it compiles then. A run started by
``assay run`` pays that before its first stage starts.

From Python 3.11 a code object records the span of source lines each of its
instructions came from. The definition is then the lines from the code
object's first line (its first decorator) to the last line any of its
instructions, or those of a function or class nested in it, came from. The
text is inspect's but for what follows the last instruction: comment lines
and statements that can never run, neither of which changes what the
function does. Whatever this cannot place (a lambda, code without a file,
Python 3.10) is left to inspect.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import textwrap
import types
from typing import Any

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def source_and_tree(obj: Any) -> tuple[str, ast.Module]:
    """``obj``'s definition, dedented, and its syntax tree.

    Raises what :func:`inspect.getsource` and :func:`ast.parse` raise
    (``OSError``, ``TypeError``, ``SyntaxError``) when there is no source.
    """
    code = obj if isinstance(obj, types.CodeType) else getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType):
        found = _from_code(code)
        if found is not None:
            return found
    source = textwrap.dedent(inspect.getsource(obj))
    tree = ast.parse(source)
    if isinstance(code, types.CodeType) and code.co_name != "<lambda>" and not _defines(tree, code):
        # Code made from another text than its file's at the lines it names: IPython's
        # %autoreload recompiles an edited function and gives it line 1 of the file,
        # where inspect finds the module's docstring. That text would stand for every
        # version of the function.
        found = _found_by_name(code, getattr(obj, "__qualname__", None))
        if found is not None:
            return found
        raise OSError(
            f"the source of {code.co_name} is not at {code.co_filename}, line {code.co_firstlineno}"
        )
    return source, tree


def _defines(tree: ast.Module, code: types.CodeType) -> bool:
    """Whether ``tree`` is the definition of ``code``'s function."""
    body = tree.body
    return len(body) == 1 and isinstance(body[0], _DEFINITIONS) and body[0].name == code.co_name


def normalized_source(obj: Any) -> tuple[str, ast.Module]:
    """``obj``'s definition without comments, docstrings or layout (the syntax tree
    written back as text), and its tree with the docstrings taken out.

    Both stage code and functions or classes held in values (a ``functools.partial``,
    a dict of functions, a parameter field) are compared in this form, so an edit to a
    comment or docstring, or re-wrapping a line, changes neither. Raises what
    :func:`source_and_tree` raises.
    """
    _, tree = source_and_tree(obj)
    strip_docstrings(tree)
    return ast.unparse(tree), tree


def normalized_expression(text: str) -> str:
    """A Python expression's text (a lambda's, maybe over several lines) without comments
    or layout: ``x*2`` reads ``x * 2``. Text that does not parse as one expression is
    given back stripped."""
    try:  # in parentheses, as it sat in a call or a dict: its line breaks are legal there
        return ast.unparse(ast.parse(f"(\n{text}\n)", mode="eval"))
    except SyntaxError:
        return text.strip()


def strip_docstrings(tree: ast.AST) -> None:
    """Take the docstring out of every function, class and module in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]


def _from_code(code: types.CodeType) -> tuple[str, ast.Module] | None:
    """The definition of ``code``'s function from the lines its instructions came from."""
    if code.co_name == "<lambda>" or not hasattr(code, "co_positions"):
        return None
    last = _last_line(code)
    linecache.checkcache(code.co_filename)  # the file as it is now, as inspect reads it
    lines = linecache.getlines(code.co_filename)
    first = code.co_firstlineno
    if last is None or not lines or not 1 <= first <= last <= len(lines):
        return None
    source = textwrap.dedent("".join(lines[first - 1 : last]))
    try:
        tree = ast.parse(source)
    except SyntaxError:  # not a whole definition (the file changed since it was imported?)
        return None
    if not _defines(tree, code):
        return None  # a def sharing its line with other code: inspect's to sort out
    return source, tree


def _found_by_name(code: types.CodeType, qualname: str | None) -> tuple[str, ast.Module] | None:
    """The definition named ``qualname`` in ``code``'s file, if compiling it gives that
    very code: IPython 9's ``%autoreload 2`` compiles an edited function (or method) alone
    and puts the code in the old function. Keyed by that text, as a fresh import of the
    file would be, an edit undone finds the result cached before it."""
    if not qualname or "<locals>" in qualname:
        return None
    linecache.checkcache(code.co_filename)
    lines = linecache.getlines(code.co_filename)
    try:
        scope: Any = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        return None
    names = qualname.split(".")
    for index, name in enumerate(names):
        kinds = _DEFINITIONS if index == len(names) - 1 else (ast.ClassDef,)
        # The last definition of a name is the one Python kept.
        scope = next(
            (n for n in reversed(scope.body) if isinstance(n, kinds) and n.name == name), None
        )
        if scope is None:
            return None
    first = min([scope.lineno] + [d.lineno for d in scope.decorator_list])
    source = textwrap.dedent("".join(lines[first - 1 : scope.end_lineno]))
    try:
        tree = ast.parse(source)
        bare = ast.parse(source)
        bare.body[0].decorator_list = []  # type: ignore[attr-defined]
        text = ast.unparse(bare)
        for name in reversed(names[:-1]):  # in its classes: private names are mangled by them
            text = f"class {name}:\n" + textwrap.indent(text, "    ")
        compiled = compile(text, code.co_filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    made = _code_named(compiled, code.co_name, len(names))
    return (source, tree) if made is not None and _same_code(made, code) else None


def _code_named(code: types.CodeType, name: str, depth: int) -> types.CodeType | None:
    """The code object ``depth`` definitions down in ``code`` named ``name`` at the end."""
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if depth == 1 and const.co_name == name:
                return const
            if depth > 1:
                found = _code_named(const, name, depth - 1)
                if found is not None:
                    return found
    return None


def _same_code(one: types.CodeType, other: types.CodeType) -> bool:
    """Same instructions, names and constants (nested code alike), wherever they came from."""
    if (one.co_code, one.co_names, one.co_varnames, one.co_freevars) != (
        other.co_code, other.co_names, other.co_varnames, other.co_freevars
    ) or len(one.co_consts) != len(other.co_consts):  # fmt: skip
        return False
    for a, b in zip(one.co_consts, other.co_consts):
        if isinstance(a, types.CodeType) or isinstance(b, types.CodeType):
            if not (isinstance(a, types.CodeType) and isinstance(b, types.CodeType)):
                return False
            if not _same_code(a, b):
                return False
        elif type(a) is not type(b) or a != b:
            return False
    return True


def _last_line(code: types.CodeType) -> int | None:
    """The last source line that any instruction of ``code`` (or of code nested in it) came from."""
    ends = [end for _, end, _, _ in code.co_positions() if end is not None]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            nested = _last_line(const)
            if nested is not None:
                ends.append(nested)
    return max(ends, default=None)
