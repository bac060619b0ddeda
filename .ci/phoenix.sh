#!/usr/bin/env bash
# Creates .venv-phoenix (gitignored) with a pinned Arize Phoenix, the real
# OTLP backend that tests/test_otlp_phoenix.py starts on loopback.
#
# Phoenix's dependency tree is large and pins versions that clash with ours,
# so it lives in its own venv and never in .venv. The test finds its
# executable through MEMOBS_PHOENIX_BIN (default .venv-phoenix/bin/phoenix).
# Idempotent: does nothing when the pinned version is already installed.
set -euo pipefail

PHOENIX_VERSION="${PHOENIX_VERSION:-20.26.1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEMOBS_PHOENIX_VENV:-$ROOT/.venv-phoenix}"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/phoenix" ] && \
   [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("arize-phoenix"))' 2>/dev/null)" = "$PHOENIX_VERSION" ]; then
    echo "phoenix.sh: arize-phoenix $PHOENIX_VERSION already in $VENV"
    exit 0
fi

echo "phoenix.sh: installing arize-phoenix $PHOENIX_VERSION into $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "arize-phoenix==$PHOENIX_VERSION"
"$VENV/bin/phoenix" --help >/dev/null
echo "phoenix.sh: ready: $VENV/bin/phoenix"
