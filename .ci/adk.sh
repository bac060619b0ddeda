#!/usr/bin/env bash
# Creates .venv-adk (gitignored): memobs_otel with the google-adk extra, for
# tests/test_google_adk.py, which tests/test_google_adk_venv.py runs there.
#
# google-adk caps opentelemetry-api/sdk (<= 1.44 today) below what the main
# test venv resolves, so it gets a venv of its own, like Phoenix.
# Idempotent: does nothing when google-adk already imports there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEMOBS_ADK_VENV:-$ROOT/.venv-adk}"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import google.adk.memory, memobs_otel, pytest_asyncio" 2>/dev/null; then
    echo "adk.sh: google-adk already in $VENV"
    exit 0
fi

echo "adk.sh: installing memobs_otel[google-adk] into $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e "$ROOT[google-adk]" "pytest>=8" "pytest-asyncio>=0.23"
"$VENV/bin/python" -c "import google.adk.memory, memobs_otel"
echo "adk.sh: ready: $VENV"
