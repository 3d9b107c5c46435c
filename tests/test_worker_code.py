"""A worker's copy of the project's code (``assay.worker_code``), in this process.

This process plays the worker: it imports a real module of a project folder,
the file changes, and what the main process would send (the new digests)
must make it import the file again, or fail naming the file. The end-to-end
case, a real Dask cluster's workers across an edit, is in ``test_parallel.py``.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import assay
from assay import worker_code
from assay.errors import AssayError
from assay.hashing import file_checksum
from conftest import edit, on_sys_path

MODULE = "assay_user_worker_code_helper"


@contextlib.contextmanager
def folder_on_path(folder: Path, module: str, text: str) -> Iterator[Path]:
    """``folder`` holding one module with ``text``, on ``sys.path`` while in the block;
    yields the module's file."""
    folder.mkdir()
    path = folder / f"{module}.py"
    path.write_text(text)
    with on_sys_path(folder, module):
        yield path


@pytest.fixture
def helper(tmp_path: Path):
    """A project folder on ``sys.path`` with one module, ``VALUE = 1``."""
    root = tmp_path / "project"
    with folder_on_path(root, MODULE, "VALUE = 1\n") as path:
        yield root, path
    worker_code.forget_project()


def test_a_module_imported_before_an_edit_is_imported_again(helper):
    root, path = helper
    assert importlib.import_module(MODULE).VALUE == 1
    assert worker_code.project_sources(str(root)) == {str(path): file_checksum(path)}
    path.write_text("VALUE = 22\n")  # another size: no stale bytecode either
    main = {str(path): file_checksum(path)}  # what a main process importing it now sends

    worker_code.use_sources(main, str(root))

    assert MODULE not in sys.modules
    assert importlib.import_module(MODULE).VALUE == 22
    worker_code.check_sources(main, str(root))  # the same code now: no complaint


def test_a_module_of_a_package_without_init_is_imported_again(tmp_path: Path):
    """``experiments/`` has no ``__init__.py``: the package has no file, stays imported,
    and kept the old ``helpers`` as an attribute, which ``from experiments import helpers``
    returned on a Dask cluster across an edit: the stage ran the old code and its result
    was cached under the new code's key."""
    root = tmp_path / "project"
    (root / "nsexp_s29").mkdir(parents=True)
    path = root / "nsexp_s29" / "helpers.py"
    path.write_text("VALUE = 1\n")
    with on_sys_path(root, "nsexp_s29", "nsexp_s29.helpers"):
        from nsexp_s29 import helpers

        assert helpers.VALUE == 1
        worker_code.project_sources(str(root))
        path.write_text("VALUE = 22\n")
        main = {str(path): file_checksum(path)}

        worker_code.use_sources(main, str(root))
        from nsexp_s29 import helpers

        assert helpers.VALUE == 22
        worker_code.check_sources(main, str(root))
        worker_code.forget_project()


def test_the_same_files_keep_the_modules_imported(helper):
    root, path = helper
    module = importlib.import_module(MODULE)

    worker_code.use_sources({str(path): file_checksum(path)}, str(root))

    assert sys.modules[MODULE] is module


def test_a_file_that_still_differs_after_importing_again_is_named(helper):
    root, path = helper
    importlib.import_module(MODULE)
    main = {str(path): "0" * 32}  # the main process imported another version

    worker_code.use_sources(main, str(root))
    importlib.import_module(MODULE)
    with pytest.raises(AssayError, match=f"another version of {MODULE}.py than the main"):
        worker_code.check_sources(main, str(root))


def test_a_module_imported_again_by_someone_else_is_digested_again(helper):
    root, path = helper
    importlib.import_module(MODULE)
    worker_code.project_sources(str(root))
    edit(path, "VALUE = 1", "VALUE = 333")  # and forgets the module, as a test would
    importlib.import_module(MODULE)

    assert worker_code.project_sources(str(root)) == {str(path): file_checksum(path)}


OUTSIDE_MODULE = "assay_user_worker_code_outside"


def test_a_module_outside_the_project_is_compared_when_the_task_names_its_file(
    helper, tmp_path: Path
):
    """Code outside the project that keys follow by source (a folder on ``PYTHONPATH``, an
    editable install) is compared as the project's is, once the main process sends it."""
    root, path = helper
    with folder_on_path(tmp_path / "checkout", OUTSIDE_MODULE, "FACTOR = 2\n") as outside:
        importlib.import_module(MODULE)
        assert importlib.import_module(OUTSIDE_MODULE).FACTOR == 2
        assert worker_code.project_sources(str(root)) == {str(path): file_checksum(path)}
        assert worker_code.project_sources(str(root), [str(outside)]) == {
            str(path): file_checksum(path),
            str(outside): file_checksum(outside),
        }
        outside.write_text("FACTOR = 333\n")
        main = {str(path): file_checksum(path), str(outside): file_checksum(outside)}

        worker_code.use_sources(main, str(root))

        assert OUTSIDE_MODULE not in sys.modules
        assert importlib.import_module(OUTSIDE_MODULE).FACTOR == 333
        worker_code.check_sources(main, str(root))
        with pytest.raises(AssayError, match=f"another version of {outside} than the main"):
            worker_code.check_sources({**main, str(outside): "0" * 32}, str(root))


def test_a_task_from_this_assay_goes_ahead_and_one_from_another_is_refused():
    mine = worker_code.assay_identity()
    version, _, digest = mine.partition("+")
    assert version == assay.__version__ and len(digest) == 12

    worker_code.check_assay(mine)
    with pytest.raises(AssayError, match="runs another assay than the main process") as caught:
        worker_code.check_assay(f"{version}+{'0' * 12}")
    assert str(Path(assay.__file__).parent) in str(caught.value)
    assert "restart the cluster's workers" in str(caught.value)


def test_when_one_side_has_no_digest_of_its_files_the_versions_are_compared():
    worker_code.check_assay(assay.__version__)
    with pytest.raises(AssayError, match="runs another assay"):
        worker_code.check_assay("0.0.1")


def test_a_worker_the_run_started_itself_is_not_asked_for_its_assay():
    worker_code.check_assay("")  # the process executor's tasks: nothing to compare


STAGE_MODULE = "assay_user_worker_stage_helper"


def test_a_stage_from_a_file_outside_the_checked_ones_is_compared_by_its_source(
    tmp_path: Path,
):
    from types import SimpleNamespace

    from assay.remote import _SAME_CODE, _check_same_code

    path = tmp_path / f"{STAGE_MODULE}.py"
    path.write_text(
        "import assay\n\n\n@assay.stage(outputs=['x'])\ndef make(record):\n    return 1\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        spec = importlib.import_module(STAGE_MODULE).make.__assay_stage__
        name = f"{STAGE_MODULE}.make"

        def task(digest: str, checked: frozenset = frozenset()) -> SimpleNamespace:
            code = {name: {"kind": "function", "digest": digest}}
            return SimpleNamespace(code=("", code), checked_files=checked, label="a")

        # Its file was found the same as the main process's: no need to read it.
        _check_same_code(spec, task("planned elsewhere", frozenset({str(path)})))
        # Otherwise its source is read and compared.
        with pytest.raises(AssayError, match="the worker has other code for"):
            _check_same_code(spec, task("planned elsewhere"))
        _SAME_CODE.clear()
        from assay.codeprint import _normalized
        from assay.hashing import hash_value

        _check_same_code(spec, task(hash_value(("function", _normalized(spec.func)[0]))))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(STAGE_MODULE, None)
        _SAME_CODE.clear()
