"""The report renders in a real browser: headless Chromium (Debian's package,
installed by ``.ci/browser.sh``) loads it from a ``file://`` URL with the
network off, runs its script, and logs no console message. The DOM after the
script ran is checked for the review-queue rows; a screenshot is kept in
``test-artifacts/report.png``.

Console messages are read from Chromium's own log (``--enable-logging=stderr``
prints every ``console.*`` call and uncaught error as an ``INFO:CONSOLE``
line), so no DevTools client is needed; a control page with a deliberate
error proves the detection works.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from memobs_otel.report import write_report
from memobs_otel.store.connection import connect_for_write
from helpers import build_agent_db

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
)
CONSOLE_LINE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)\] (.*)")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is not installed: run `bash .ci/browser.sh` "
                    "(apt-get install -y chromium); CI does this before the tests")
    return path


def run_chromium(chromium: str, tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    result = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180, env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def console_messages(stderr: str) -> list[str]:
    return [m.group(1) for m in map(CONSOLE_LINE.search, stderr.splitlines()) if m]


class ReviewRows(HTMLParser):
    """The rows of ``#review-queue``: (data-signals, shown?, cell texts)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, bool, list[str]]] = []
        self.table_attrs: dict[str, str] = {}
        self._in_table = self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "review-queue":
            self._in_table, self.table_attrs = True, attrs
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            hidden = "hidden" in (attrs.get("class") or "").split()
            self.rows.append((attrs.get("data-signals", ""), not hidden, []))
        elif self._in_body and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1][2].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._in_table = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    build_agent_db(folder / "agent.db")
    out = folder / "report.html"
    write_report(folder / "agent.db", out)
    return out


def test_report_renders_in_chromium(chromium, report, tmp_path):
    result = run_chromium(chromium, tmp_path, report, "--dump-dom")
    assert console_messages(result.stderr) == []
    dom = result.stdout
    parser = ReviewRows()
    parser.feed(dom)
    # the script ran: it counted the rows it shows
    assert parser.table_attrs.get("data-shown") == "2"
    assert '<span id="review-count" class="hint">2 of 2 shown</span>' in dom
    # cells: score, signals, entity, action, title, injections, cited, tokens wasted, ...
    assert [(signals, shown, cells[0], cells[2], cells[3], cells[5], cells[7])
            for signals, shown, cells in parser.rows] == [
        ("supersedeable", True, "100", "playbook/pb-refund-old", "archive: superseded by pb-refund", "1", "9"),
        ("high_cost_low_cite", True, "34", "playbook/pb-tone", "rewrite or shorten: 44 tokens wasted", "4", "44"),
    ]
    # the malicious title is text on the page, not markup; ours is the only script
    assert '&lt;script&gt;alert("pwned")&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;' in dom
    assert dom.count("<script") == 1 and "<img" not in dom


def test_report_screenshot(chromium, report, tmp_path):
    shot = tmp_path / "report.png"
    result = run_chromium(chromium, tmp_path, report, "--window-size=1280,2000", f"--screenshot={shot}")
    assert console_messages(result.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == 1280  # IHDR width
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "report.png")


def test_empty_report_renders_in_chromium(chromium, tmp_path):
    db = tmp_path / "empty.db"
    connect_for_write(db).close()
    out = tmp_path / "empty.html"
    write_report(db, out)
    result = run_chromium(chromium, tmp_path, out, "--dump-dom")
    assert console_messages(result.stderr) == []
    assert '<section class="empty" id="empty-state"><h2>No memory activity yet</h2>' in result.stdout


def test_console_errors_are_detected(chromium, tmp_path):
    """Control: the log parsing does catch an error, so an empty list means something."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.warn("careful"); '
                    "notDefined();</script></body></html>")
    result = run_chromium(chromium, tmp_path, page, "--dump-dom")
    messages = console_messages(result.stderr)
    assert [m.split(", source:")[0] for m in messages] == [
        '"careful"', '"Uncaught ReferenceError: notDefined is not defined"',
    ]


# --- layout: nothing clipped, no sideways scrolling --------------------------

UUID = "9b2f4c1e-7d3a-4f5b-8c6d-0e1f2a3b4c5d"
UUID_NEWER = "0c7e1a2b-3d4e-4f5a-9b8c-7d6e5f4a3b2c"
LONG_ID = "tenant-eu-west-1/customers/acme-industries/threads/2025-05/summary-0001"  # 72 characters
LONG_TITLE = ("Seat preferences for Alice: window seat on long-haul flights, aisle on short hops, never "
              "row 13, and the front of the cabin when she travels with colleagues from the Lyon office")
UNBROKEN_TITLE = "quarterly_refund_policy_for_enterprise_customers_in_the_european_union_v7_final_FINAL"
SEAT = "Alice prefers a window seat on long-haul flights."


def build_long_ids_db(db_path: Path) -> None:
    """Realistic long ids and titles, all recorded within the same hour
    (through the real pipeline, now): a mem0 UUID and its newer twin, a
    LangGraph namespace key superseded by a 72-character id, a document
    chunk id, a title with no space to break at."""
    import memobs_otel as memobs
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    handle = memobs.configure(db_path=str(db_path), tracer_provider=provider)
    tracer = provider.get_tracer("test-agent")
    contents = {
        ("mem0_memory", UUID): (SEAT, LONG_TITLE),
        ("mem0_memory", UUID_NEWER): (SEAT, None),
        ("langgraph_item", "memories/alice:seat-preferences"): ("Window seat, front of the cabin.", None),
        ("conversation_summary", LONG_ID): ("Acme asked twice about the refund of order 4411. " * 8, None),
        ("document", "kb-gift#3f2a9c1d0e4b"): ("Gift cards cannot be refunded. " * 30, UNBROKEN_TITLE),
    }

    def search(keys):
        @memobs.observe_retrieval(entity_type=lambda e: e.metadata["type"], store="memories")
        def run(query):
            return [{"id": i, "content": contents[(t, i)][0], "title": contents[(t, i)][1], "metadata": {"type": t}}
                    for t, i in keys]
        with memobs.context(user_id="alice", session_id="s-1"), tracer.start_as_current_span("turn"):
            run("seat?")

    try:
        first = [k for k in contents if k[1] != UUID_NEWER]
        for _ in range(4):
            search(first)
        search([("mem0_memory", UUID_NEWER)])
        memobs.record_write("langgraph_item", "memories/alice:seat-preferences", "update",
                            superseded_by=LONG_ID)
        assert handle.force_flush(10_000)
    finally:
        handle.shutdown()
        provider.shutdown()


MEASURE = """
<pre id="measure"></pre><script>
(function () {
  var out = {innerWidth: window.innerWidth, texts: [], labels: [], cells: []};
  document.querySelectorAll("svg").forEach(function (svg) {
    var box = svg.viewBox.baseVal;
    svg.querySelectorAll("text").forEach(function (t) {
      var b = t.getBBox();
      if (b.x < -0.5 || b.x + b.width > box.width + 0.5 || b.y < -0.5 || b.y + b.height > box.height + 0.5)
        out.texts.push([t.textContent, b.x, b.width, box.width]);
      if (t.hasAttribute("data-width") && t.getComputedTextLength() > +t.getAttribute("data-width"))
        out.labels.push([t.firstChild.textContent, t.getComputedTextLength(), +t.getAttribute("data-width")]);
    });
  });
  var table = document.getElementById("review-queue");
  var scroll = table.parentNode;
  out.table = [scroll.scrollWidth, scroll.clientWidth, table.offsetWidth];
  out.page = [document.documentElement.scrollWidth, document.documentElement.clientWidth];
  table.querySelectorAll("td, th").forEach(function (c) {
    if (c.scrollWidth > c.clientWidth) out.cells.push([c.textContent, c.scrollWidth, c.clientWidth]);
  });
  out.labelTexts = Array.prototype.map.call(document.querySelectorAll("text.label"),
                                            function (t) { return t.firstChild.textContent; });
  document.getElementById("measure").textContent = JSON.stringify(out);
})();
</script>"""


@pytest.fixture(scope="module")
def long_ids_report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("long-ids")
    build_long_ids_db(folder / "agent.db")
    out = folder / "report.html"
    write_report(folder / "agent.db", out)
    return out


def measured(chromium, tmp_path, report: Path, width: int) -> dict:
    """The page as a person sees it at ``width`` px, measured by a script
    added to a copy (the copy drops the page's CSP, which admits only the
    page's own script)."""
    import json

    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", report.read_text())
    copy = tmp_path / "measured.html"
    copy.write_text(page.replace("</body>", MEASURE + "</body>"))
    result = run_chromium(chromium, tmp_path, copy, f"--window-size={width},2000", "--dump-dom")
    assert console_messages(result.stderr) == []
    found = re.search(r'<pre id="measure">(.*?)</pre>', result.stdout, re.S)
    return json.loads(unescape(found.group(1)))


@pytest.mark.parametrize("width", [1400, 1024])
def test_long_ids_are_not_clipped_and_the_table_fits(chromium, long_ids_report, tmp_path, width):
    m = measured(chromium, tmp_path, long_ids_report, width)
    assert m["innerWidth"] == width
    assert m["texts"] == []  # every chart text inside its chart
    assert m["labels"] == []  # every bar label within its column
    assert m["cells"] == [], m["cells"]  # no table cell's content overflows it
    assert m["table"][0] <= m["table"][1] and m["page"][0] <= m["page"][1]
    # labels up to 50 characters are shown whole; a longer one keeps its
    # start and end (the full id is its tooltip)
    longest = "conversation_summary/" + LONG_ID
    assert sorted(m["labelTexts"]) == sorted([
        longest[:25] + "…" + longest[-24:], "document/kb-gift#3f2a9c1d0e4b",
        f"mem0_memory/{UUID}", f"mem0_memory/{UUID_NEWER}",
        "langgraph_item/memories/alice:seat-preferences"])


def test_single_day_is_drawn_per_hour(long_ids_report):
    page = long_ids_report.read_text()
    assert "<figcaption>Injections per hour</figcaption>" in page
    assert 'id="over-time-unit"' in page


def test_long_ids_screenshot(chromium, long_ids_report, tmp_path):
    shot = tmp_path / "report.png"
    run_chromium(chromium, tmp_path, long_ids_report, "--window-size=1400,2400", f"--screenshot={shot}")
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "report-long-ids.png")
    assert int.from_bytes(shot.read_bytes()[16:20], "big") == 1400
