"""The Dask executor as a researcher on a cluster meets it: a wrong --dask-address, a
scheduler without workers yet.

The scheduler and workers are real: a ``distributed.LocalCluster`` of worker processes, or
a server on a port of 127.0.0.1 that is not a Dask scheduler.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import assay
from conftest import (
    forget_project_modules,
    free_port,
    local_cluster,
    one_experiment_project,
    run_cli,
)

DASK_S35 = """
import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["y"], cachers=[JsonCacher])
def compute(record):
    return 1


def get_params():
    return [assay.ExperimentParameters(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        compute(assay.Record(manager, params))
"""


ANSWERS = {
    "silent": None,  # a web server (a Dask dashboard's port) waits for a request
    "http": b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    "ssh": b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n",  # port 22: it speaks first
}


@contextmanager
def not_a_scheduler(answer: bytes | None) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and sends ``answer`` on each
    (``None``: it never says a word); yields its address."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
                held.append(connection)
                if answer is not None:
                    connection.sendall(answer)
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for connection in held:
            connection.close()


@pytest.mark.slow
@pytest.mark.parametrize("answer", ANSWERS)
def test_an_address_where_another_program_listens_stops_the_run_with_advice(
    tmp_path: Path, answer: str
):
    """The dashboard's port (8787) or another program's for the scheduler's (8786). A silent
    server kept the run waiting for good (Dask waits for its greeting with no timeout); one
    that answered made it fail with "MemoryError: Unable to allocate 3.07 EiB", Dask having
    read the answer's first bytes as the length of a message."""
    root = one_experiment_project(tmp_path, f"dask_s35_{answer}", DASK_S35)

    with not_a_scheduler(ANSWERS[answer]) as address:
        result = run_cli(
            "run", f"dask_s35_{answer}", "--executor", "dask", "--dask-address", address,
            cwd=root, timeout=120,
            # Dask's default (read as the run starts) for the two that answer at once.
            env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"} if answer == "silent" else {},
        )  # fmt: skip

    assert result.code == 1 and "Traceback" not in result.text, result
    assert f"No Dask scheduler answered at {address}: a program there" in result.text, result
    assert "MemoryError" not in result.text, result
    assert "port (8786 by default" in result.text and "--dask-address" in result.text, result


@pytest.mark.slow
def test_a_refused_connection_is_named_in_the_message(tmp_path: Path):
    """Dask's "Timed out trying to connect" kept to itself why: nothing listens there
    (refused) or nothing answers at all (a firewall)."""
    root = one_experiment_project(tmp_path, "dask_s35_refused", DASK_S35)
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens there

    result = run_cli(
        "run", "dask_s35_refused", "--executor", "dask", "--dask-address", address,
        cwd=root, timeout=120, env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"},
    )  # fmt: skip

    assert result.code == 1 and "Traceback" not in result.text, result
    assert f"Could not start or reach the Dask cluster ({address})" in result.text, result
    assert "(the last attempt: ConnectionRefusedError: " in (result.text), result


def test_a_host_name_that_is_not_known_stops_the_run_at_once(tmp_path: Path):
    """A typo in the scheduler's host name: Dask tried it again and again for its whole
    connect timeout (30 s by default) and then said only that it timed out."""
    root = one_experiment_project(tmp_path, "dask_s35_typo", DASK_S35)
    address = "tcp://assay-s35-no-such-node.invalid:8786"  # .invalid never resolves

    result = run_cli(
        "run", "dask_s35_typo", "--executor", "dask", "--dask-address", address,
        cwd=root, timeout=100,
        env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "600s"},  # the old wait: a timeout
    )  # fmt: skip

    assert result.code == 1 and "Traceback" not in result.text, result
    assert (
        f"The host name 'assay-s35-no-such-node.invalid' of --dask-address {address} is not known"
        in result.text
    ), result
    assert "--dask-address" in result.text, result


class Heard(logging.Handler):
    """Sets :attr:`event` when a record whose message holds ``words`` is logged."""

    def __init__(self, words: str):
        super().__init__(logging.WARNING)
        self.words = words
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.event.set()


def run_in_thread(name: str, root: Path, address: str) -> tuple[threading.Thread, list]:
    """``assay.run_experiment(name)`` on the cluster at ``address``, started in a thread; the
    list gets the first set's ``y``, or what the run raised."""
    outcome: list = []

    def run() -> None:
        try:
            manager = assay.run_experiment(
                name, [], project_root=root, executor="dask", dask_address=address
            )
            outcome.append(manager.records[0].state["y"])
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.mark.slow
def test_a_run_on_a_scheduler_without_workers_says_it_waits_for_them(tmp_path: Path):
    """A scheduler started alone, or dask-jobqueue's jobs still queued: the run waits for
    workers, as it should, but said nothing of it, and looked hung."""
    root = one_experiment_project(tmp_path, "dask_s35_idle", DASK_S35)
    heard = Heard("has no workers yet")
    logging.getLogger("assay").addHandler(heard)

    with local_cluster(workers=0) as cluster:
        thread, outcome = run_in_thread("dask_s35_idle", root, cluster.scheduler_address)
        try:
            warned = heard.event.wait(60)
        finally:
            logging.getLogger("assay").removeHandler(heard)
            cluster.scale(1)  # the worker comes: the run goes on
            thread.join(120)
            forget_project_modules()

    assert warned, "no word of the missing workers"
    assert outcome == [1]


WAITS_FOR_GO = """
import time
from pathlib import Path

import assay
from assay.caching import JsonCacher

FLAGS = Path(__file__).resolve().parent.parent


@assay.stage(outputs=["y"], cachers=[JsonCacher])
def compute(record):
    (FLAGS / "started").write_text("yes")
    deadline = time.monotonic() + 120
    while not (FLAGS / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return 1


def get_params():
    return [assay.ExperimentParameters(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        compute(assay.Record(manager, params))
"""


@pytest.mark.slow
def test_a_run_whose_workers_all_left_says_it_waits_for_more(tmp_path: Path):
    """dask-jobqueue's jobs reach their walltime while a stage runs: the scheduler keeps its
    task until a worker joins, and the run waited without a word, looking hung."""
    root = one_experiment_project(tmp_path, "dask_s35_left", WAITS_FOR_GO)
    heard = Heard("has no workers left")
    logging.getLogger("assay").addHandler(heard)

    with local_cluster(workers=1) as cluster:
        thread, outcome = run_in_thread("dask_s35_left", root, cluster.scheduler_address)
        try:
            for _ in range(1200):  # the stage runs on the worker
                if (root / "started").exists() or not thread.is_alive():
                    break
                thread.join(0.05)
            cluster.scale(0)  # its job ended
            warned = heard.event.wait(60)
        finally:
            logging.getLogger("assay").removeHandler(heard)
            (root / "go").write_text("yes")
            cluster.scale(1)  # a new job started: the run goes on
            thread.join(120)
            forget_project_modules()

    assert warned, "no word of the workers that left"
    assert outcome == [1]
