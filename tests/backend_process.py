"""A real OTLP backend (Phoenix, MLflow) as a process of the tests, on loopback.

``start`` runs the backend in its own session with its output in a log file,
``wait_until_up`` polls its health check (failing the test with the log when it
exits or never comes up), ``stop`` signals its process group (only it). The
``loopback_only`` fixture clears the OTLP / memobs variables the developer's
shell may set and keeps any proxy from standing between the exporters and
loopback. Nothing here is specific to one backend: each test module keeps its
own server class (its API reads) and its health check.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

# no proxy may stand between the exporters and loopback
NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def log_tail(log: Path, chars: int = 6000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"(no log: {exc})"


def start(argv: list[str], env: dict, work: Path, log: Path) -> subprocess.Popen:
    """The backend in its own session (so ``stop`` can signal all of it), its output in ``log``."""
    with open(log, "wb") as log_file:
        return subprocess.Popen(argv, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=work, start_new_session=True)


def wait_until_up(name: str, process: subprocess.Popen, log: Path, timeout_s: float,
                  is_up: Callable[[], bool]) -> None:
    """Poll ``is_up`` (a URLError or OSError counts as not yet) until it is true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with status {process.returncode} before it was up; "
                        f"its log:\n{log_tail(log)}")
        try:
            if is_up():
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"{name} was not up after {timeout_s} s; its log:\n{log_tail(log)}")


def health_ok(url: str) -> bool:
    """The backend's health check answers 200."""
    with NO_PROXY_OPENER.open(url, timeout=2) as response:
        return response.status == 200


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    # the backend runs in its own session: signal its whole process group (only it)
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture
def loopback_only(monkeypatch):
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                 "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                 "OTEL_SDK_DISABLED", "MEMOBS_ENABLED", "MEMOBS_CAPTURE_CONTENT",
                 "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
