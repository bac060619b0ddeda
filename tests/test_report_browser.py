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
from html.parser import HTMLParser
from pathlib import Path

import pytest

from memobs_otel.report import write_report
from memobs_otel.store.connection import connect_for_write
from test_report import build_agent_db

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
