"""What assay writes or serves stays usable whatever the names in a run hold.

One project runs an experiment whose parameter sets and outputs have the names
researchers (and hostile strings) give them: ``σ²=0.1``, ``r²``, ``½``, a
keyword, Markdown and HTML markup, an ESC and a NUL character. Then:

- every code cell of its exported notebook compiles, and every Markdown cell
  shows the names as written (no heading, emphasis or tag made of them);
- ``dag.svg`` is well-formed XML;
- in the dashboard, a reportable too big to inline, opened on its own page,
  shows its image and still runs no script (headless Chromium);
- two token-protected dashboards on one machine keep their own cookies, and
  ``--host 0.0.0.0`` prints addresses another machine can open.
"""

from __future__ import annotations

import http.cookiejar
import json
import socket
import sys
import urllib.request
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import assay
from conftest import forget_project_modules
from ui_helpers import Server

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000200a5d6e0b30000000049454e44ae426082"
)

EXPERIMENT = '''
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher
from assay.reporting import Reportable

PNG = bytes.fromhex({png!r})
NAMES = {names!r}


class BigPage(Reportable):
    """A page over the report's inline limit, with an image and scripts that must not run."""

    def render(self):
        Path(self.path, "dot.png").write_bytes(PNG)

    def html(self):
        return (
            f'<img id="dot" src="{{self.file_url("dot.png")}}" width="5" height="5">'
            "<script>document.title = 'script ran'</script>"
            '<img src="nowhere.png" onerror="document.title = \\'handler ran\\'">'
            + "<p>row</p>" * 110_000
        )


@dataclass
class Params(assay.ExperimentParameters):
    big: bool = False


@assay.stage(inputs=None, outputs=["r²", "class", "½"], cachers=[JsonCacher] * 3)
def fit(record):
    if record.params.big:
        record.report(BigPage(name="big page"))
    return 0.9, 1, 0.5


def get_params():
    return [Params(name=name, big=index == 0) for index, name in enumerate(NAMES)]


def run(param_sets, manager):
    for params in param_sets:
        fit(assay.Record(manager, params))
'''

NAMES = [
    "σ²=0.1",
    "esc\x1b[31mRED\x1b[0m nul\x00",
    "a_b *c* `d` # <b>e</b> [l](x) ![i](y) $x$ &amp; ~~s~~ \\* #",
    "import",
    "½",
]

COMMAND = 'assay run hostile --notes "see `x` and *y*"'


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    from assay.scaffold import init_project

    root = tmp_path_factory.mktemp("render") / "hostile"
    init_project(root)
    source = EXPERIMENT.format(png=PNG.hex(), names=NAMES)
    (root / "experiments" / "hostile.py").write_text(source, encoding="utf-8")
    saved = list(sys.path)
    try:
        assay.run_experiment("hostile", project_root=root, command=COMMAND)
    finally:
        sys.path[:] = saved
        forget_project_modules()
    return root


def run_id(root: Path) -> str:
    from assay.store import RunStore

    with RunStore(root / "assay.db") as store:
        return store.get_run("latest").id


# -- assay export notebook ------------------------------------------------------------------


@pytest.fixture(scope="module")
def notebook(project: Path) -> dict:
    pytest.importorskip("nbformat")
    from assay.config import ProjectConfig
    from assay.export.notebook import write_notebook

    path = write_notebook(ProjectConfig.load(project), "latest")
    return json.loads(path.read_text(encoding="utf-8"))


def cells(notebook: dict, kind: str) -> list[str]:
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == kind]


def test_every_code_cell_of_the_notebook_compiles_and_names_stay_readable(notebook):
    """``\\w`` let ``²`` and ``½`` into variable names: a SyntaxError in the cell."""
    variables = []
    for source in cells(notebook, "code"):
        compile(source, "cell", "exec")
        first = source.split(" = assay.load(", 1)
        if len(first) == 2:
            variables.append(first[0])
    assert len(variables) == 3 * len(NAMES) == len(set(variables))
    assert {"r2_σ2_0_1", "class_σ2_0_1", "a_1_2_σ2_0_1", "r2_import", "r2_1_2"} <= set(variables)


MARKUP = ("html", "em_open", "link_open", "image", "s_open")
"""Markdown tokens that none of the names or the command may turn into."""


def rendered(source: str) -> tuple[list, list]:
    """The block tokens of Markdown ``source`` (CommonMark) and their inline tokens."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(source)
    return tokens, [child for token in tokens for child in token.children or []]


def test_notebook_markdown_shows_names_and_the_command_as_written(notebook):
    """Names and the command went into Markdown raw: tags, emphasis, broken code spans."""
    headings, spans = [], []
    for source in cells(notebook, "markdown"):
        tokens, inline = rendered(source)
        assert not [t for t in tokens + inline if t.type.startswith(MARKUP)], source
        spans += [t.content for t in inline if t.type == "code_inline"]
        headings += [
            "".join(c.content for c in tokens[i + 1].children if c.type == "text")
            for i, t in enumerate(tokens)
            if t.type == "heading_open"
        ]
    shown = {heading.split(" / ")[0] for heading in headings if heading.endswith(" / r²")}
    assert shown == {name.replace("\x1b", " ").replace("\x00", " ") for name in NAMES}
    assert COMMAND in spans


def test_the_exports_readme_shows_the_command_as_written(project, tmp_path):
    from assay.config import ProjectConfig
    from assay.export.full import export_run

    folder = export_run(ProjectConfig.load(project), "latest", destination=tmp_path / "export")
    tokens, inline = rendered((folder / "README.md").read_text(encoding="utf-8"))
    assert not [t for t in tokens + inline if t.type.startswith(MARKUP)]
    spans = [t.content for t in inline if t.type == "code_inline"]
    assert COMMAND in spans and "hostile" in spans


# -- dag.svg --------------------------------------------------------------------------------


def test_dag_svg_is_xml_whatever_the_names(project):
    """An ESC in a parameter set's name made dag.svg unreadable after that name."""
    svg = project / "reports" / run_id(project) / "dag.svg"
    tree = ElementTree.parse(svg)
    texts = ["".join(element.itertext()) for element in tree.iter()]
    assert any("esc\u241b[31mRED\u241b[0m nul\u2400" in text for text in texts)
    assert any("σ²=0.1" in text for text in texts)
    stages = [e for e in tree.iter() if "stage" in (e.get("class") or "").split()]
    assert len(stages) == len(NAMES)


# -- the dashboard --------------------------------------------------------------------------


def big_page(root: Path) -> str:
    """The dashboard path of the reportable page too big to be inlined."""
    from assay.report.collect import FRAGMENT_LIMIT

    run = run_id(root)
    pages = (root / "reports" / run / "reportables").glob("*.html")
    (big,) = [p for p in pages if p.stat().st_size > FRAGMENT_LIMIT]
    return f"/runs/{run}/reportables/{big.name}"


@pytest.mark.slow
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"])  # without and with a token
def test_a_big_reportable_on_its_own_page_shows_its_image_and_runs_nothing(project, browser, host):
    """The page is sandboxed; its images were refused as not same-origin (CORP)."""
    with Server(project, "--host", host) as server:
        context = browser.new_context()
        page = context.new_page()
        refused = []
        page.on("requestfailed", lambda request: refused.append(request.url))
        assert page.goto(server.url).ok  # with a token, this sets the cookie
        response = page.goto(server.base + big_page(project), wait_until="load")
        assert response.ok
        assert "sandbox" in response.headers["content-security-policy"]
        assert page.evaluate("document.getElementById('dot').naturalWidth") == 1, refused
        assert page.title() == "" and not [url for url in refused if "dot.png" in url]
        context.close()


@pytest.mark.slow
def test_two_dashboards_on_one_machine_keep_their_own_token_cookies(project):
    """Both set the cookie `assay_token`, and cookies are kept per host, not per port."""
    jar = http.cookiejar.CookieJar()  # as a browser: one jar, ports not told apart
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with (
        Server(project, "--host", "127.0.0.2") as one,
        Server(project, "--host", "127.0.0.2") as other,
    ):
        for server in (one, other):
            with opener.open(server.url, timeout=30) as response:
                assert response.status == 200
        for server in (one, other):  # both still open without the token in the URL
            with opener.open(f"{server.base}/api/runs", timeout=30) as response:
                assert json.load(response)["total"] == 1
    assert len({cookie.name for cookie in jar}) == 2


def test_a_dashboard_on_every_address_prints_urls_another_machine_can_open():
    from assay.ui import reachable_names

    host_name = socket.gethostname()
    for wildcard in ("0.0.0.0", "::"):
        names = reachable_names(wildcard)
        assert names and not {"0.0.0.0", "::", ""} & set(names)
        assert host_name in names or host_name.startswith(("localhost", "127.")), names
    assert reachable_names("10.1.2.3") == ["10.1.2.3"]
    assert reachable_names("127.0.0.2") == ["127.0.0.2"]


def test_a_notebook_variable_never_hides_a_builtin_its_cells_call():
    """An output `print` of a set named `-` became `print = assay.load(...)`: the last
    cell's print(...) then failed with "'int' object is not callable"."""
    from assay.export.notebook import TAKEN_NAMES, _variable

    taken = set(TAKEN_NAMES)
    names = [_variable({"name": name, "param_set": "-"}, taken) for name in ("print", "len")]
    assert names == ["print_2", "len_2"]


def test_the_runs_console_lines_show_control_characters_of_names_as_escapes():
    """`assay run -v` printed `fit [a<ESC>[31mb<BEL>c] executed`: the terminal turned red."""
    import logging

    from assay.runlog import _ConsoleFormatter

    record = logging.LogRecord(
        "assay", logging.DEBUG, __file__, 1, "%s executed", ("fit [a\x1b[31mb\x07c]",), None
    )
    assert _ConsoleFormatter("%(message)s").format(record) == "fit [a\\x1b[31mb\\x07c] executed"
