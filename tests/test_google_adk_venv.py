"""Runs tests/test_google_adk.py in .venv-adk, where google-adk's opentelemetry cap holds.

google-adk caps opentelemetry-api/sdk below the versions the main test venv
resolves, so it is not in the ``test`` extra; ``.ci/adk.sh`` makes a venv of
its own (like Phoenix's). This test runs the ADK tests there and passes only
if they all pass. Where google-adk imports in this interpreter, those tests
already ran here: this one is skipped. ``MEMOBS_ADK_PYTHON`` points at
another interpreter. Missing venv: a failure that says how to make it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("google") is not None
                    and importlib.util.find_spec("google.adk") is not None,
                    reason="google-adk is installed here: tests/test_google_adk.py ran in this venv")
def test_google_adk_suite_in_its_own_venv():
    python = Path(os.environ.get("MEMOBS_ADK_PYTHON") or REPO / ".venv-adk" / "bin" / "python")
    assert python.exists(), f"{python} is missing: run `bash .ci/adk.sh` first"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MEMOBS_"))}
    done = subprocess.run([str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/test_google_adk.py"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    tail = done.stdout[-3000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    summary = re.search(r"(\d+) passed", done.stdout)
    assert summary and int(summary.group(1)) >= 7 and " skipped" not in done.stdout.splitlines()[-1], tail
