#!/usr/bin/env bash
# Creates .venv-mlflow (gitignored) with a pinned MLflow, the real tracking
# server that tests/test_otlp_mlflow.py starts on loopback (OTLP/HTTP).
#
# MLflow's dependency tree is large (~850 MB, ~2 min to install on 2 cores)
# and pins its own opentelemetry, so it lives in its own venv and never in
# .venv. The test finds the server through MEMOBS_MLFLOW_BIN (default
# .venv-mlflow/bin/mlflow) and reads the traces back with that venv's Python.
# Idempotent: does nothing when the pinned version is already installed.
set -euo pipefail

MLFLOW_VERSION="${MLFLOW_VERSION:-3.17.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEMOBS_MLFLOW_VENV:-$ROOT/.venv-mlflow}"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/mlflow" ] && \
   [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))' 2>/dev/null)" = "$MLFLOW_VERSION" ]; then
    echo "mlflow.sh: mlflow $MLFLOW_VERSION already in $VENV"
    exit 0
fi

echo "mlflow.sh: installing mlflow $MLFLOW_VERSION into $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "mlflow==$MLFLOW_VERSION"
"$VENV/bin/mlflow" --version >/dev/null
echo "mlflow.sh: ready: $VENV/bin/mlflow"
