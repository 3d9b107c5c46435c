"""The dashboard's ASGI application: routes, pages, the JSON API and its guard.

Pages (HTML, rendered on the server with Jinja2, autoescaping on)::

    /runs                      every run: filter, search, sort, pages
    /runs/RUN_ID/              one run: its report, metrics, live progress
    /compare?run=3&run=7       runs (or ?set=3:NAME) side by side
    /sweep?experiment=E        a metric against the parameters of an experiment
    /lineage?key=KEY.OUTPUT    where an artifact came from, with a preview

JSON (what the pages' small scripts fetch; usable from your own tools)::

    /api/runs                  the runs table (same query parameters as /runs)
    /api/runs/RUN_ID/progress  live progress of a run
    /api/compare, /api/sweep, /api/lineage

Only ``GET`` (and ``HEAD``) exist. Every response carries a
``Content-Security-Policy`` that allows scripts from the dashboard itself
only (no inline script, no event handler attribute, nothing from elsewhere).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import math
import re
import sqlite3
from collections.abc import Iterator
from functools import cached_property
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.routing import Route

from assay.errors import AssayError, RunStoreError
from assay.run_record import run_log_path
from assay.ui import comparison, graph, live, queries
from assay.ui.files import Folders, Refused, preview, served_type

HERE = Path(__file__).parent
REPORT = HERE.parent / "report"

log = logging.getLogger("assay")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""Scripts only from the dashboard's own files; inline styles (reports and plots use them)."""

FILE_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox allow-same-origin"
)
"""For files served as they are (images, reportable pages): nothing may run (no script,
form, popup or plugin). The page keeps the dashboard's origin (``allow-same-origin``) so it
may show the images beside it, which are served to the same origin only; without scripts
that origin gives it nothing else."""

TOKEN_COOKIE = "assay_token"
"""The start of the token cookie's name; the rest is made from the token (see
:func:`token_cookie`)."""


def token_cookie(token: str) -> str:
    """The name of the cookie that holds ``token``: ``assay_token_`` and 12 hex digits of
    its SHA-256. Browsers keep cookies by host name, not by port, so two dashboards on one
    machine (or two SSH tunnels to ``localhost``) would replace each other's cookie if they
    shared a name; the digest tells nothing about the token."""
    return f"{TOKEN_COOKIE}_{hashlib.sha256(token.encode()).hexdigest()[:12]}"


def create_app(config: Any, token: str | None = None, allowed_hosts: list[str] | None = None):
    """The ASGI application serving the project of ``config`` (a ProjectConfig).

    ``token``: if given, every request needs ``?token=TOKEN`` (which sets a
    cookie) or that cookie. ``allowed_hosts``: the ``Host`` names accepted
    (``None``: any), a defence against DNS rebinding when bound to 127.0.0.1.
    """
    dashboard = Dashboard(config)
    app = Starlette(routes=dashboard.routes(), exception_handlers=dashboard.handlers())
    app.state.dashboard = dashboard
    return Guard(app, token=token, allowed_hosts=allowed_hosts)


class Guard:
    """ASGI middleware: host check, token check, security headers on every response."""

    def __init__(self, app: Any, token: str | None, allowed_hosts: list[str] | None):
        self.app = app
        self.token = token
        self.cookie = token_cookie(token) if token is not None else None
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        set_cookie = None
        if refusal is None and self.token is not None:
            given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])
            if hmac.compare_digest(given[0].encode(), self.token.encode()):
                set_cookie = (
                    f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                ).encode("latin-1")
            elif not self._cookie_ok(headers.get("cookie", "")):
                refusal = (
                    403,
                    "This dashboard needs its token: open the URL that `assay ui` printed "
                    "(it ends in ?token=...).",
                )
        if refusal is not None:
            response = PlainTextResponse(refusal[1], status_code=refusal[0])
            await _secured(response)(scope, receive, send)
            return

        async def send_secured(message: dict) -> None:
            if message["type"] == "http.response.start":
                extra = list(message.get("headers", []))
                present = {k.lower() for k, _ in extra}
                for name, value in SECURITY_HEADERS:
                    if name not in present:
                        extra.append((name, value))
                if set_cookie is not None:
                    extra.append((b"set-cookie", set_cookie))
                message = {**message, "headers": extra}
            await send(message)

        await self.app(scope, receive, send_secured)

    def _refusal(self, scope: dict, headers: dict) -> tuple[int, str] | None:
        if scope["method"] not in ("GET", "HEAD"):
            return 405, "The dashboard is read-only: only GET requests."
        if self.allowed_hosts is not None:
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.strip("[]").lower() not in self.allowed_hosts:
                return 400, f"Unexpected Host header {host!r}."
        return None

    def _cookie_ok(self, header: str) -> bool:
        """Whether the ``Cookie`` header holds this dashboard's token. Read pair by pair:
        the browser sends the cookies of every app on this host name, and one that
        Python's cookie parser finds malformed (a space, a quote) would hide the rest."""
        assert self.token is not None
        for pair in header.split(";"):
            name, _, value = pair.strip().partition("=")
            if name == self.cookie and hmac.compare_digest(value.encode(), self.token.encode()):
                return True
        return False


SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class JSONResponse(_StarletteJSON):
    """JSON, with a metric's infinity (which JSON cannot write) as ``null``, like NaN's."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except ValueError:  # "Out of range float values are not JSON compliant"
            return super().render(_finite(content))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name.decode(), value.decode())
    return response


class Dashboard:
    """The pages and API of one project (read-only)."""

    def __init__(self, config: Any):
        self.config = config
        self.folders = Folders.of(config)
        self.store_path = Path(config.store_path)

    # -- plumbing -------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/", lambda request: RedirectResponse("/runs", status_code=302)),
            Route("/runs", self.runs_page),
            Route("/api/runs", self.runs_api),
            Route("/runs/{ref}", self.run_redirect),
            Route("/runs/{ref}/", self.run_page),
            Route("/runs/{ref}/{path:path}", self.report_file),
            Route("/api/runs/{ref}/progress", self.progress_api),
            Route("/log/{ref}", self.log_file),
            Route("/compare", self.compare_page),
            Route("/api/compare", self.compare_api),
            Route("/sweep", self.sweep_page),
            Route("/api/sweep", self.sweep_api),
            Route("/lineage", self.lineage_page),
            Route("/api/lineage", self.lineage_api),
            Route("/artifact/{key}/{name:path}", self.artifact_file),
            Route("/static/{path:path}", self.static_file),
        ]

    def handlers(self) -> dict:
        return {
            HTTPException: self.http_error,
            Refused: self.refused,
            RunStoreError: self.unreadable_store,
            sqlite3.Error: self.unreadable_store,
        }

    async def http_error(self, request: Request, exc: Any) -> Response:
        return self._error(request, exc.status_code, str(exc.detail))

    async def refused(self, request: Request, exc: Any) -> Response:
        return self._error(request, 404, "Not found: that path is not one the dashboard serves.")

    async def unreadable_store(self, request: Request, exc: Exception) -> Response:
        """A run store that cannot be read (damaged, not a run store, written by a newer
        assay, locked for too long): the page says why and what to do; the server goes on."""
        if isinstance(exc, RunStoreError):
            message = str(exc)
        else:
            message = (
                f"The run store {self.store_path} cannot be read: {exc}. Try again when the "
                "runs writing to it are done; if it stays so, check it with `assay ls`."
            )
        return self._error(request, 503, message)

    def _error(self, request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        title = {404: "Not found", 403: "Not allowed"}.get(status, "Cannot show this")
        return self.page("error.html.j2", status_code=status, title=title, message=message)

    @cached_property
    def env(self) -> Any:
        import jinja2

        from assay.report.build import (
            format_duration,
            format_size,
            format_time,
            format_url,
            format_value,
        )

        env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(
                [
                    jinja2.FileSystemLoader(str(HERE / "templates")),
                    jinja2.FileSystemLoader(str(REPORT / "templates")),
                ]
            ),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(
            when=format_time, seconds=format_duration, size=format_size, value=format_value,
            number=_number, short=_short, url=format_url,
        )  # fmt: skip
        env.globals.update(lineage_href=graph.lineage_href, qs=urlencode)
        return env

    def page(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """Render a page (never cached by the browser: runs change)."""
        from assay import __version__

        context.setdefault("version", __version__)
        context.setdefault("scripts", [])
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status_code, headers={"cache-control": "no-store"})

    def store(self) -> Any:
        from assay.store import RunStore

        if not self.store_path.exists():
            raise HTTPException(404, f"No run store at {self.store_path}: no run yet.")
        store = RunStore(self.store_path)
        store.settle_abandoned_runs()  # a run killed on this machine stops showing as live
        return store

    def db(self) -> sqlite3.Connection:
        """A read-only connection to the run store, once :meth:`store` has checked that it
        is one this assay reads (and settled the runs killed on this machine)."""
        self.store().close()
        return queries.connect(self.store_path)

    def run_of(self, store: Any, ref: str) -> Any:
        try:
            return store.get_run(ref)
        except AssayError as exc:
            raise HTTPException(404, comparison.one_line(exc)) from exc

    # -- runs -----------------------------------------------------------------------------

    def _runs(self, request: Request) -> tuple[queries.RunQuery, dict, list[str]]:
        try:
            query = queries.RunQuery.parse(request.query_params, _multi(request))
        except queries.QueryError as exc:
            raise HTTPException(400, str(exc)) from exc
        if not self.store_path.exists():
            return query, {"total": 0, "runs": [], "metric_names": [], "errors": []}, []
        db = self.db()
        try:
            return query, queries.list_runs(db, query), queries.experiments(db)
        finally:
            db.close()

    def runs_page(self, request: Request) -> Response:
        query, result, experiments = self._runs(request)
        pages = max(1, -(-result["total"] // query.per_page))
        return self.page(
            "runs.html.j2",
            title="Runs",
            query=query,
            result=result,
            experiments=experiments,
            pages=pages,
            statuses=("running", "completed", "failed", "interrupted"),
            sorts=queries.SORTS,
            no_store=not self.store_path.exists(),
        )

    def runs_api(self, request: Request) -> Response:
        query, result, _ = self._runs(request)
        return JSONResponse(
            {"page": query.page, "per_page": query.per_page, **result}, headers=_NO_STORE
        )

    # -- one run --------------------------------------------------------------------------

    def run_redirect(self, request: Request) -> Response:
        with self.store() as store:
            run = self.run_of(store, request.path_params["ref"])
        return RedirectResponse(f"/runs/{quote(run.id)}/", status_code=302)

    def run_page(self, request: Request) -> Response:
        from assay.report.build import damage_errors, read_record, run_context
        from assay.report.collect import record_from_store, run_info_dict

        ref = request.path_params["ref"]
        with self.store() as store:
            run = self.run_of(store, ref)
            if ref != run.id:
                return RedirectResponse(f"/runs/{quote(run.id)}/", status_code=302)
            run_dir = self.folders.resolve("reports", run.id)
            log_path = self.folders.inside(run_log_path(self.config, run).parent, f"{run.id}.log")
            log_href = f"/log/{run.id}" if log_path and log_path.is_file() else None
            record = None
            run_json = self.folders.inside("reports", f"{run.id}/run.json")
            if run_json and run_json.is_file() and run.status != "running":
                record = read_record(run_dir)  # None (and a warning) if it is damaged
            context = None
            if record is not None:
                record = {**record, "run": {**record["run"], **run_info_dict(run)}}
                record["log"] = log_href
                try:
                    context = run_context(record, run_dir)
                except damage_errors() as exc:
                    log.warning(
                        "%s is damaged: its page cannot be made from it (%s: %s). The page "
                        "is made from the run store instead.",
                        run_dir / "run.json",
                        type(exc).__name__,
                        exc,
                    )
            if context is None:
                record = record_from_store(store, run, run_dir, self.config)
                if run.status == "running":
                    record["source"] = "live"  # not a rebuilt report: the run is not over
                record["log"] = log_href
                context = run_context(record, run_dir)
            progress = live.progress(run, self.config, store) if run.status == "running" else None
        context.pop("_svg")
        keys = [
            f"{node['key']}.{output['name']}" if node.get("key") and output.get("path") else None
            for node in record.get("nodes", [])
            for output in node.get("outputs", [])
        ]
        for row, key in zip(context["artifacts"], keys):
            row["href"] = graph.lineage_href(key) if key else None
        from assay.metrics import final_values, read_metrics

        metric_rows = read_metrics(self.store_path, [run.number])
        finals = final_values(metric_rows)
        metrics = [
            {"param_set": k[1], "stage": k[2], "name": k[3], "value": v,
             "steps": sum(1 for r in metric_rows if (r.param_set, r.stage, r.name) == k[1:])}
            for k, v in finals.items()
        ]  # fmt: skip
        context.update(
            title=f"Run {run.number} of {run.experiment}",
            progress=progress,
            metrics=metrics,
            run_info=run,
            scripts=["/static/live.js"] if progress else [],
        )
        return self.page("ui_run.html.j2", **context)

    def report_file(self, request: Request) -> Response:
        with self.store() as store:
            run = self.run_of(store, request.path_params["ref"])
        path = self.folders.resolve("reports", f"{run.id}/{request.path_params['path']}")
        if not path.is_file():
            raise HTTPException(404, "No such file in the run's report.")
        kind = "text/html; charset=utf-8" if path.suffix == ".html" else served_type(path)
        return FileResponse(path, media_type=kind, headers={"content-security-policy": FILE_CSP})

    def progress_api(self, request: Request) -> Response:
        with self.store() as store:
            run = self.run_of(store, request.path_params["ref"])
            return JSONResponse(live.progress(run, self.config, store), headers=_NO_STORE)

    def log_file(self, request: Request) -> Response:
        with self.store() as store:
            run = self.run_of(store, request.path_params["ref"])
        path = self.folders.resolve(run_log_path(self.config, run).parent, f"{run.id}.log")
        if not path.is_file():
            raise HTTPException(404, f"Run {run.number} has no log (it ran with --no-log).")
        return _growing_file(path, "text/plain; charset=utf-8", _NO_STORE)

    # -- compare --------------------------------------------------------------------------

    def _compare(self, request: Request) -> tuple[list, list[str], dict | None]:
        multi = _multi(request)
        runs = [r for value in multi.get("run", []) for r in value.split(",") if r.strip()]
        with self.store() as store:
            columns, errors = comparison.columns_from(store, runs, multi.get("set", []))
            result = comparison.compare(store, self.store_path, columns) if columns else None
        return columns, errors, result

    def compare_page(self, request: Request) -> Response:
        columns, errors, result = self._compare(request) if request.query_params else ([], [], None)
        return self.page(
            "compare.html.j2",
            title="Compare",
            columns=columns,
            errors=errors,
            result=result,
            api=f"/api/compare?{request.url.query}",
            scripts=["/static/vendor/plotly.min.js", "/static/plots.js"] if result else [],
        )

    def compare_api(self, request: Request) -> Response:
        _, errors, result = self._compare(request)
        return JSONResponse({"errors": errors, **(result or {})}, headers=_NO_STORE)

    # -- sweep ----------------------------------------------------------------------------

    def _sweep(self, request: Request) -> dict[str, Any]:
        args = request.query_params
        if not self.store_path.exists():  # nothing has run yet: the page says so
            return {
                "experiments": [], "experiment": None, "metrics": [], "metric": None,
                "points": [], "fields": [], "x": None, "color": None, "all": False,
                "best": "highest",
            }  # fmt: skip
        db = self.db()
        try:
            experiments = queries.experiments(db)
            experiment = args.get("experiment") or (experiments[0] if experiments else None)
            metrics = queries.metric_names(db, experiment) if experiment else []
            metric = args.get("metric") if args.get("metric") in metrics else None
            metric = metric or next(iter(metrics), None)
            all_runs = args.get("all") == "1"
            points = (
                queries.sweep_points(db, experiment, metric, all_runs=all_runs)
                if experiment and metric
                else []
            )
        finally:
            db.close()
        fields = _varying_fields(points)
        names = [f["name"] for f in fields]
        x = args.get("x") if args.get("x") in names else next(iter(names), None)
        color = args.get("color") if args.get("color") in names else None
        best = args.get("best")
        if best not in ("highest", "lowest"):
            best = "lowest" if metric and lower_is_better(metric) else "highest"
        return {
            "experiments": experiments, "experiment": experiment, "metrics": metrics,
            "metric": metric, "points": points, "fields": fields, "x": x, "color": color,
            "all": all_runs, "best": best,
        }  # fmt: skip

    def sweep_page(self, request: Request) -> Response:
        data = self._sweep(request)
        sign = -1 if data["best"] == "highest" else 1
        ranked = sorted(
            data["points"], key=lambda p: (p["value"] is None, sign * (p["value"] or 0))
        )[:200]
        return self.page(
            "sweep.html.j2",
            title="Sweep",
            ranked=ranked,
            api=f"/api/sweep?{request.url.query}",
            scripts=["/static/vendor/plotly.min.js", "/static/plots.js"] if data["points"] else [],
            **data,
        )

    def sweep_api(self, request: Request) -> Response:
        return JSONResponse(self._sweep(request), headers=_NO_STORE)

    # -- lineage and artifacts --------------------------------------------------------------

    def _lineage(self, key: str) -> Any:
        from assay.lineage import lineage

        self.folders.artifact_dir(key)  # refuses anything that is not a key
        try:
            return lineage(key, config=self.config)
        except AssayError as exc:
            raise HTTPException(404, comparison.one_line(exc)) from exc

    def lineage_page(self, request: Request) -> Response:
        key = (request.query_params.get("key") or "").strip()
        if not key:
            return self.page("lineage.html.j2", title="Lineage", node=None, key="")
        node = self._lineage(key)
        meta = self.folders.artifact_meta(key) or {}
        files = []
        for entry in (meta.get("files") or [])[:5]:
            name = str(entry.get("path"))
            try:
                path = self.folders.artifact_file(key, name)
            except Refused:
                continue
            files.append({"name": name, "size": entry.get("size"), "preview": preview(path, name)})
        with self.store() as store:
            used_by: dict[int, dict] = {}
            for found in store.find_artifact_runs(key):
                entry = used_by.setdefault(
                    found.run_number,
                    {"number": found.run_number, "id": found.run_id, "actions": []},
                )
                entry["actions"].append(found.action)
        stage_metrics = []
        if node.run and node.run.get("number") is not None:
            db = self.db()
            try:
                stage_metrics = queries.stage_metrics(db, node.run["number"], key.split(".")[0])
            finally:
                db.close()
        return self.page(
            "lineage.html.j2",
            title=f"Lineage of {node.output}",
            node=node,
            key=key,
            svg=_markup(graph.render(node, graph.lineage_href)),
            files=files,
            used_by=list(used_by.values()),
            stage_metrics=stage_metrics,
            extra_files=max(0, len(meta.get("files") or []) - 5),
        )

    def lineage_api(self, request: Request) -> Response:
        node = self._lineage((request.query_params.get("key") or "").strip())
        return JSONResponse(dataclasses.asdict(node), headers=_NO_STORE)

    def artifact_file(self, request: Request) -> Response:
        key, name = request.path_params["key"], request.path_params["name"]
        path = self.folders.artifact_file(key, name)
        if not path.is_file():
            raise HTTPException(404, "That file of the artifact is not in the cache.")
        kind = served_type(path)
        return FileResponse(
            path,
            media_type=kind,
            headers={"content-security-policy": FILE_CSP},
            filename=path.name if kind == "application/octet-stream" else None,
        )

    # -- static files ---------------------------------------------------------------------

    def static_file(self, request: Request) -> Response:
        path_text = request.path_params["path"]
        if path_text == "report.css":
            path = REPORT / "static" / "report.css"
        elif path_text == "vendor/plotly.min.js":
            path = _plotly_js()
        else:
            path = Folders({}).resolve(HERE / "static", path_text)
        if not path.is_file():
            raise HTTPException(404, "No such static file.")
        kind = {".css": "text/css", ".js": "text/javascript"}.get(path.suffix)
        return FileResponse(path, media_type=kind, headers={"cache-control": "max-age=600"})


_NO_STORE = {"cache-control": "no-store"}


def _growing_file(path: Path, media_type: str, headers: dict[str, str]) -> Response:
    """A file that may grow while it is sent (the log of a running run), as long as it was
    when asked for. A ``FileResponse`` reads to the end, sends more than the length it
    announced, and the browser gets a broken page instead of the log."""
    size = path.stat().st_size

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as handle:
            left = size
            while left > 0 and (chunk := handle.read(min(left, 64 * 1024))):
                left -= len(chunk)
                yield chunk

    return StreamingResponse(
        chunks(), media_type=media_type, headers={**headers, "content-length": str(size)}
    )


def _plotly_js() -> Path:
    """plotly.js as the installed ``plotly`` package ships it (never committed here)."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise HTTPException(404, "Plots need the plotly package: pip install 'assay[ui]'.")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def _multi(request: Request) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        found.setdefault(key, []).append(value)
    return found


_LOWER_IS_BETTER = frozenset(
    {"loss", "error", "err", "mse", "mae", "rmse", "nll", "perplexity", "cost", "regret"}
)


def lower_is_better(metric: str) -> bool:
    """Whether ``metric``'s name says it is a loss or an error (``val_loss``, ``test_mse``),
    which the sweep ranks lowest first unless told otherwise."""
    return not _LOWER_IS_BETTER.isdisjoint(re.split(r"[^a-z0-9]+", metric.lower()))


def _varying_fields(points: list[dict]) -> list[dict[str, Any]]:
    """Parameter fields whose value differs between the points (the sweep's axes)."""
    order = list(dict.fromkeys(k for p in points for k in p["params"] if k != "name"))
    fields = []
    for name in order:
        values = [p["params"].get(name) for p in points]
        distinct = {json.dumps(v, sort_keys=True) for v in values}
        if len(distinct) > 1:
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            fields.append({"name": name, "numeric": numeric, "count": len(distinct)})
    return fields


def _markup(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _short(value: Any, length: int = 12) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= length else text[:length]
