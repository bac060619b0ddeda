"""OTLP into a real MLflow tracking server: what MLflow shows of a memobs retrieval.

A real ``mlflow server`` (SQLite backend store, its own working directory) is
started on loopback; memobs sends a decorated retrieval over OTLP/HTTP with
``memobs.configure(otlp_endpoint=...)`` and the ``x-mlflow-experiment-id``
header from ``OTEL_EXPORTER_OTLP_HEADERS``; the traces are read back with
MLflow's own client (``mlflow.search_traces``), run by the MLflow venv's
Python. MLflow shows a span's inputs and outputs: memobs's documents arrive
as the span's outputs, and the span as a RETRIEVER.

MLflow lives in its own venv (``.ci/mlflow.sh`` creates ``.venv-mlflow``);
``MEMOBS_MLFLOW_BIN`` points at another ``mlflow`` executable (its venv's
``python`` beside it reads the traces). If MLflow is missing or cannot start,
the tests fail with its log: never skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from backend_process import NO_PROXY_OPENER, free_port, health_ok, log_tail, start, stop, wait_until_up
from backend_process import loopback_only  # noqa: F401  (a fixture)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import memobs_otel as memobs

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 240  # first start runs MLflow's migrations: ~40 s on 2 loaded cores
ARRIVAL_TIMEOUT_S = 60

PLAYBOOKS = [
    {"id": "pb-refund", "content": "Refunds over 100 EUR need a manager's approval.", "score": 0.92,
     "metadata": {"created_at": "2025-01-05T10:00:00Z", "title": "Refund policy"}},
    {"id": "pb-tone", "content": "Answer in the customer's language, briefly and politely.", "score": 0.71},
]
DOCUMENTS = [{"id": "pb-refund", "score": 0.92,
              "metadata": {"created_at": "2025-01-05T10:00:00Z", "title": "Refund policy"}},
             {"id": "pb-tone", "score": 0.71}]

# run by the MLflow venv's python: every span of the experiment's traces, as JSON
READER = """
import json, sys
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
traces = mlflow.search_traces(locations=[sys.argv[2]], return_type="list")
print(json.dumps([{"trace": t.info.trace_id, "name": s.name, "span_type": s.span_type, "inputs": s.inputs,
                   "outputs": s.outputs, "attributes": s.attributes} for t in traces for s in t.data.spans],
                 default=str))
"""


def _mlflow_bin() -> Path:
    return Path(os.environ.get("MEMOBS_MLFLOW_BIN") or REPO / ".venv-mlflow" / "bin" / "mlflow")


class MLflow:
    def __init__(self, process: subprocess.Popen, port: int, log: Path, python: Path):
        self.process, self.port, self.log, self.python = process, port, log, python
        self.base = f"http://127.0.0.1:{port}"

    def log_tail(self, chars: int = 6000) -> str:
        return log_tail(self.log, chars)

    def create_experiment(self, name: str) -> str:
        request = urllib.request.Request(f"{self.base}/api/2.0/mlflow/experiments/create",
                                         data=json.dumps({"name": name}).encode(),
                                         headers={"Content-Type": "application/json"})
        with NO_PROXY_OPENER.open(request, timeout=10) as response:
            return json.load(response)["experiment_id"]

    def spans(self, experiment_id: str) -> list[dict]:
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        done = subprocess.run([str(self.python), "-c", READER, self.base, experiment_id], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    binary = _mlflow_bin()
    if not binary.exists():
        pytest.fail(f"MLflow not found at {binary}: run .ci/mlflow.sh (or set MEMOBS_MLFLOW_BIN)")
    work = tmp_path_factory.mktemp("mlflow")
    log = work / "mlflow.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OTEL_"))}
    process = start(
        [str(binary), "server", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
         "--default-artifact-root", str(work / "artifacts"), "--host", "127.0.0.1", "--port", str(port)],
        env, work, log)
    server = MLflow(process, port, log, binary.parent / "python")
    try:
        wait_until_up("MLflow", process, log, START_TIMEOUT_S, lambda: health_ok(f"{server.base}/health"))
        yield server
    finally:
        stop(process)


def _send_retrieval(server: MLflow, capture: bool = False):
    """One decorated retrieval over OTLP/HTTP; returns (its trace id as MLflow names it, losses)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "memobs-mlflow-test"}))
    handle = memobs.configure(db_path=None, tracer_provider=provider, otlp_endpoint=server.base,
                              capture_content=capture)
    try:
        @memobs.observe_retrieval(entity_type="playbook", store="playbooks")
        def search_playbooks(query: str, k: int = 2):
            return PLAYBOOKS[:k]

        with memobs.context(session_id="s-7"):
            search_playbooks("refund over 100 EUR")
        assert handle.force_flush(10_000)
        losses = dict(handle.losses())
    finally:
        handle.shutdown()
        provider.shutdown()
    return losses


def _arrived(server: MLflow, experiment_id: str) -> list[dict]:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    spans: list[dict] = []
    while time.monotonic() < deadline:
        spans = server.spans(experiment_id)
        if spans:
            return spans
        time.sleep(1)
    pytest.fail(f"no span reached MLflow in {ARRIVAL_TIMEOUT_S} s; its log:\n{server.log_tail()}")


def test_without_the_experiment_header_mlflow_refuses_the_spans(mlflow_server, loopback_only):
    losses = _send_retrieval(mlflow_server)
    # MLflow answers 422; memobs counts the lost export, the caller never sees it
    assert losses == {"otlp-spans-export-failed": 1}
    assert '"POST /v1/traces HTTP/1.1" 422' in mlflow_server.log_tail(20_000)


def test_retrieval_shows_in_mlflow_with_its_documents_as_outputs(mlflow_server, loopback_only):
    experiment_id = mlflow_server.create_experiment("memobs")
    loopback_only.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-mlflow-experiment-id={experiment_id}")
    assert _send_retrieval(mlflow_server) == {}
    (span,) = _arrived(mlflow_server, experiment_id)
    assert span["name"] == "search_memory playbooks"
    assert span["span_type"] == "RETRIEVER"
    assert span["outputs"] == DOCUMENTS  # the span's output.value: ids, scores, metadata; no content
    assert span["inputs"] is None  # no query: content capture is off
    attrs = span["attributes"]
    assert (attrs["gen_ai.conversation.id"], attrs["gen_ai.memory.store.id"]) == ("s-7", "playbooks")
    assert attrs["retrieval.documents.0.document.id"] == "pb-refund"
    assert attrs["memobs.injection.count"] == 2


def test_with_capture_on_mlflow_shows_the_query_and_contents(mlflow_server, loopback_only):
    experiment_id = mlflow_server.create_experiment("memobs-capture")
    loopback_only.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-mlflow-experiment-id={experiment_id}")
    assert _send_retrieval(mlflow_server, capture=True) == {}
    (span,) = _arrived(mlflow_server, experiment_id)
    assert span["inputs"] == "refund over 100 EUR"
    assert [d["content"] for d in span["outputs"]] == [p["content"] for p in PLAYBOOKS]
