"""``assay ui``: a live dashboard over the run store and the cache, in the browser.

::

    assay ui                  # http://127.0.0.1:PORT/ (a free port), until Ctrl-C
    assay ui --port 8765 --open

It reads what already exists (``assay.db``, ``data/cache``, ``reports/``,
``logs/``) and needs no other service. It is read-only: it never imports or
runs project code and never unpickles anything; previews read only JSON,
CSV / Parquet, ``.npy`` (without pickles), images and text.

Secure by default: it binds 127.0.0.1 and accepts only requests addressed to
a local host name. Binding another address (``--host 0.0.0.0``) prints a
warning and a random token; every request then needs ``?token=...`` (once:
it sets a cookie of that dashboard's own). For every address (``0.0.0.0``,
``::``) the URLs printed name this machine as others reach it: its host name
and its address. See ``docs/dashboard.md``.

Needs the ``ui`` extra: ``pip install 'assay[ui]'`` (Starlette, uvicorn, plotly).
"""

from __future__ import annotations

import secrets
import socket
import sys
from collections.abc import Callable
from typing import Any

from assay.errors import AssayError

__all__ = ["LOCAL_HOSTS", "create_app", "serve"]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Addresses that only this machine reaches."""

WILDCARD_HOSTS = ("0.0.0.0", "::", "")
"""Addresses that mean "every address of this machine"."""

_INSTALL = "The dashboard needs the ui extra: pip install 'assay[ui]'"


def create_app(config: Any, token: str | None = None, allowed_hosts: list[str] | None = None):
    """The dashboard's ASGI application for a project (see :mod:`assay.ui.app`)."""
    _check_installed()
    from assay.ui.app import create_app as make

    return make(config, token=token, allowed_hosts=allowed_hosts)


def serve(
    project: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    open_browser: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the dashboard of the project at ``project`` (default: found from the cwd).

    Blocks until interrupted. ``port=None`` (or 0) picks a free port. The URL
    is printed with ``echo`` before the server starts.
    """
    _check_installed()
    import uvicorn

    from assay.config import ProjectConfig

    config = ProjectConfig.load(project)
    local = host in LOCAL_HOSTS
    token = None if local else secrets.token_urlsafe(24)
    sock = _bind(host, port or 0)
    bound = sock.getsockname()[1]
    query = f"?token={token}" if token else ""
    urls = [f"http://{_url_host(name)}:{bound}/{query}" for name in reachable_names(host)]
    echo(f"assay dashboard of {config.root}")
    if not local:
        echo(
            f"WARNING: listening on {host}, reachable from other machines. Anyone with the "
            "token below can read every run, parameter and artifact of this project; the "
            "traffic is not encrypted. Stop with Ctrl-C."
        )
        echo(f"token: {token}")
    for url in urls:
        echo(url)
    sys.stdout.flush()
    app = create_app(config, token=token, allowed_hosts=None if not local else list(LOCAL_HOSTS))
    if open_browser:
        import webbrowser

        here = host if host not in WILDCARD_HOSTS else _loopback(host)
        webbrowser.open(f"http://{_url_host(here)}:{bound}/{query}")
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    server.run(sockets=[sock])


def reachable_names(host: str) -> list[str]:
    """Names by which a browser reaches a dashboard bound to ``host``: ``host`` itself,
    except for an every-address bind (``0.0.0.0``, ``::``), which no browser can open:
    then this machine's host name and the address it uses to reach other machines."""
    if host not in WILDCARD_HOSTS:
        return [host]
    address = _outgoing_address(socket.AF_INET6 if ":" in host else socket.AF_INET)
    names = dict.fromkeys(
        name
        for name in (socket.gethostname(), address)
        if name and name not in LOCAL_HOSTS and not name.startswith("127.")
    )
    return list(names) or [_loopback(host)]  # a machine without a network: this one only


def _loopback(host: str) -> str:
    return "::1" if ":" in host else "127.0.0.1"


def _outgoing_address(family: int) -> str | None:
    """The address this machine would send from to reach other machines, if it has one.

    Connecting a UDP socket sends nothing: it only picks the route (to a documentation
    address that is never used on a real network)."""
    target = ("2001:db8::1", 9) if family == socket.AF_INET6 else ("192.0.2.1", 9)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(target)
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address in ("0.0.0.0", "::") else address


def _url_host(name: str) -> str:
    return f"[{name}]" if ":" in name else name


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        what = f"port {port} on {host}" if port else f"a port on {host}"
        raise AssayError(
            f"Cannot listen on {what}: {exc.strerror or exc}. Choose another with --port "
            "(or leave --port out to take a free one), or check --host."
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _check_installed() -> None:
    from importlib.util import find_spec

    missing = [name for name in ("starlette", "uvicorn") if find_spec(name) is None]
    if missing:
        raise AssayError(f"{_INSTALL} ({', '.join(missing)} not installed).")
