"""The OTLP path end to end, against a real backend: Arize Phoenix.

A real ``phoenix serve`` is started on loopback (free ports, its own working
directory, telemetry off; nothing is downloaded), a decorated retrieval is
recorded through ``memobs.configure(otlp_endpoint=..., otlp_protocol=...)``
over OTLP/HTTP, over OTLP/gRPC and through the standard
``OTEL_EXPORTER_OTLP_*`` variables, and the spans are read back through
Phoenix's REST API (``GET /v1/projects/{project}/spans``) and GraphQL API.

Phoenix lives in its own venv (``.ci/phoenix.sh`` creates ``.venv-phoenix``);
``MEMOBS_PHOENIX_BIN`` points at another ``phoenix`` executable. If Phoenix
is missing or cannot start, the tests fail with its log: never skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from backend_process import (
    NO_PROXY_OPENER,
    free_port,
    health_ok,
    log_tail,
    loopback_only,  # noqa: F401  (a fixture)
    port_open,
    start,
    stop,
    wait_until_up,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import memobs_otel as memobs
from memobs_otel import semconv as sc

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 180  # first start runs Phoenix's migrations; ~20 s on 2 cores
ARRIVAL_TIMEOUT_S = 30

PLAYBOOKS = [
    {"id": "pb-refund", "content": "Refunds over 100 EUR need a manager's approval.", "score": 0.92,
     "metadata": {"created_at": "2025-01-05T10:00:00Z", "status": "active", "title": "Refund policy"}},
    {"id": "pb-tone", "content": "Answer in the customer's language, briefly and politely.", "score": 0.71},
    {"id": "pb-escalate", "content": "Escalate legal threats to the on-call lead at once.", "score": 0.4,
     "metadata": {"version": 3, "parent_id": "pb-escalate-v2"}},
]


def _phoenix_bin() -> Path:
    return Path(os.environ.get("MEMOBS_PHOENIX_BIN") or REPO / ".venv-phoenix" / "bin" / "phoenix")


def _get_json(url: str, data: bytes | None = None, timeout: float = 5.0):
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    with NO_PROXY_OPENER.open(request, timeout=timeout) as response:
        return json.load(response)


class Phoenix:
    def __init__(self, process: subprocess.Popen, http_port: int, grpc_port: int, log: Path):
        self.process = process
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.log = log
        self.base = f"http://127.0.0.1:{http_port}"

    def log_tail(self, chars: int = 6000) -> str:
        return log_tail(self.log, chars)

    def spans(self, project: str, trace_id: str) -> list[dict]:
        query = urllib.parse.urlencode({"trace_id": trace_id, "limit": 100})
        url = f"{self.base}/v1/projects/{urllib.parse.quote(project)}/spans?{query}"
        try:
            return _get_json(url)["data"]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # the project appears with its first span
                return []
            raise

    def graphql(self, query: str, variables: dict) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        answer = _get_json(f"{self.base}/graphql", data=body)
        assert not answer.get("errors"), answer["errors"]
        return answer["data"]


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    binary = _phoenix_bin()
    if not binary.exists():
        pytest.fail(f"Phoenix not found at {binary}: run .ci/phoenix.sh (or set MEMOBS_PHOENIX_BIN)")
    work = tmp_path_factory.mktemp("phoenix")
    log = work / "phoenix.log"
    http_port, grpc_port = free_port(), free_port()
    while grpc_port == http_port:
        grpc_port = free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(work / "data"),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(http_port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    for name in ("PHOENIX_SQL_DATABASE_URL", "PHOENIX_POSTGRES_HOST", "PHOENIX_COLLECTOR_ENDPOINT"):
        env.pop(name, None)
    process = start([str(binary), "serve"], env, work, log)
    server = Phoenix(process, http_port, grpc_port, log)
    try:
        wait_until_up("Phoenix", process, log, START_TIMEOUT_S,
                      lambda: health_ok(f"{server.base}/healthz") and port_open(server.grpc_port))
        yield server
    finally:
        stop(process)


def _plain(value):
    """OTel attribute values as JSON gives them back (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


def _send_retrieval(configure_kwargs: dict, project: str):
    """Record one decorated retrieval; return the spans as the SDK saw them."""
    provider = TracerProvider(resource=Resource.create({
        "service.name": "memobs-otlp-test",
        "openinference.project.name": project,
    }))
    seen = InMemorySpanExporter()  # what memobs emitted, to compare with what arrived
    provider.add_span_processor(SimpleSpanProcessor(seen))
    handle = memobs.configure(db_path=None, tracer_provider=provider, **configure_kwargs)
    try:
        @memobs.observe_retrieval(entity_type="playbook", store="playbooks")
        def search_playbooks(query: str, k: int = 3):
            return PLAYBOOKS[:k]

        with memobs.context(user_id="u-42", session_id="s-7"):
            result = search_playbooks("refund over 100 EUR")
        assert result == PLAYBOOKS  # the decorated function's result is unchanged
        assert handle.force_flush(10_000), "the OTLP exporter could not flush"
    finally:
        handle.shutdown()
        provider.shutdown()
    return seen.get_finished_spans()


def _arrived(phoenix: Phoenix, project: str, trace_id: str, count: int) -> list[dict]:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    spans: list[dict] = []
    while time.monotonic() < deadline:
        spans = phoenix.spans(project, trace_id)
        if len(spans) >= count:
            return spans
        time.sleep(0.3)
    pytest.fail(f"{len(spans)} of {count} spans reached Phoenix in {ARRIVAL_TIMEOUT_S} s; "
                f"its log:\n{phoenix.log_tail()}")


@pytest.mark.parametrize("transport", ["http/protobuf", "grpc", "env"])
def test_retrieval_reaches_phoenix(phoenix, loopback_only, transport):
    project = f"memobs-{transport.replace('/', '-')}"
    if transport == "env":
        # the standard variables alone: no endpoint passed to configure()
        loopback_only.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix.base)
        loopback_only.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        kwargs: dict = {}
    elif transport == "grpc":
        kwargs = {"otlp_endpoint": f"http://127.0.0.1:{phoenix.grpc_port}", "otlp_protocol": "grpc"}
    else:
        kwargs = {"otlp_endpoint": phoenix.base, "otlp_protocol": "http/protobuf"}

    sent = _send_retrieval(kwargs, project)
    [retrieval] = [s for s in sent if s.name == "search_memory playbooks"]
    trace_id = format(retrieval.context.trace_id, "032x")
    span_id = format(retrieval.context.span_id, "016x")

    spans = _arrived(phoenix, project, trace_id, len(sent))
    [got] = [s for s in spans if s["context"]["span_id"] == span_id]

    # Phoenix classifies the span as a retriever and parsed its document list
    assert got["name"] == "search_memory playbooks"
    assert got["span_kind"] == "RETRIEVER"
    attrs = got["attributes"]
    for i, playbook in enumerate(PLAYBOOKS):
        assert attrs[f"retrieval.documents.{i}.document.id"] == playbook["id"]
        assert attrs[f"retrieval.documents.{i}.document.score"] == playbook["score"]
    assert f"retrieval.documents.{len(PLAYBOOKS)}.document.id" not in attrs
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "search_memory"
    assert attrs[sc.GEN_AI_MEMORY_STORE_ID] == "playbooks"
    assert attrs[sc.MEMOBS_INJECTION_COUNT] == 3
    assert attrs[sc.USER_ID] == "u-42"
    assert attrs[sc.SESSION_ID] == "s-7"
    # every span attribute arrived with its value (Phoenix moves the kind out, and parses each
    # document's metadata JSON: its REST API gives the fields back one key each)
    expected_attrs = {}
    for key, value in retrieval.attributes.items():
        if key.endswith(".document.metadata"):
            expected_attrs.update({f"{key}.{field}": v for field, v in json.loads(value).items()})
        else:
            expected_attrs[key] = _plain(value)
    assert expected_attrs.pop(sc.OPENINFERENCE_SPAN_KIND) == "RETRIEVER"
    assert attrs == expected_attrs
    # no content left the process (capture is off by default)
    assert not any(k.endswith(".document.content") for k in attrs)

    # what UIs show (issue 18): the kind, the conversation, each document's metadata and the
    # documents as the span's JSON output (for UIs that read only inputs and outputs)
    assert got["span_kind"] == "RETRIEVER" and retrieval.kind.name == "CLIENT"
    assert attrs[sc.GEN_AI_CONVERSATION_ID] == "s-7"
    metadata = {0: {"created_at": "2025-01-05T10:00:00Z", "status": "active", "title": "Refund policy"},
                2: {"version": 3, "parent_id": "pb-escalate-v2"}}
    for i in range(len(PLAYBOOKS)):
        prefix = f"retrieval.documents.{i}.document.metadata."
        assert {k[len(prefix):]: v for k, v in attrs.items() if k.startswith(prefix)} == metadata.get(i, {})
    documents = [{"id": p["id"], "score": p["score"]} for p in PLAYBOOKS]
    for i, fields in metadata.items():
        documents[i]["metadata"] = fields
    assert json.loads(attrs[sc.OUTPUT_VALUE]) == documents
    assert attrs[sc.OUTPUT_MIME_TYPE] == "application/json"
    assert "gen_ai.memory.record.count" not in attrs and attrs[sc.MEMOBS_RECORD_COUNT] == 3

    node = phoenix.graphql(
        "query($id: ID!) { node(id: $id) { ... on Span { spanKind numDocuments "
        "output { value mimeType } } } }",
        {"id": got["id"]},
    )["node"]
    assert node == {"spanKind": "retriever", "numDocuments": 3,
                    "output": {"value": attrs[sc.OUTPUT_VALUE], "mimeType": "json"}}

    # one memobs.injection event per entity, every attribute exactly as emitted
    injections = [e for e in got["events"] if e["name"] == sc.EVENT_INJECTION]
    assert [e["attributes"][sc.ENTITY_ID] for e in injections] == ["pb-refund", "pb-tone", "pb-escalate"]
    assert [e["attributes"][sc.ENTITY_RANK] for e in injections] == [0, 1, 2]
    assert [e["attributes"][sc.ENTITY_SCORE] for e in injections] == [0.92, 0.71, 0.4]
    assert {e["attributes"][sc.ENTITY_TYPE] for e in injections} == {"playbook"}
    emitted = [
        {k: _plain(v) for k, v in e.attributes.items()}
        for e in retrieval.events if e.name == sc.EVENT_INJECTION
    ]
    assert [e["attributes"] for e in injections] == emitted
    first = injections[0]["attributes"]
    assert first[sc.ENTITY_CREATED_AT] == "2025-01-05T10:00:00Z"
    assert first[sc.ENTITY_STATUS] == "active"
    assert injections[2]["attributes"][sc.ENTITY_PARENT_ID] == "pb-escalate-v2"
    for event in injections:
        a = event["attributes"]
        assert isinstance(a[sc.ENTITY_TOKENS], int) and a[sc.ENTITY_TOKENS] > 0
        assert len(a[sc.ENTITY_SIMHASH]) == 16 and int(a[sc.ENTITY_SIMHASH], 16) >= 0
        assert a[sc.ENTITY_CONTENT_HASH]
        assert sc.ENTITY_CONTENT not in a
    assert attrs[sc.MEMOBS_INJECTION_TOKENS] == sum(e["attributes"][sc.ENTITY_TOKENS] for e in injections)


def test_query_and_contents_reach_phoenix_with_capture_on(phoenix, loopback_only):
    """With content capture on: the query as input.value and gen_ai.memory.query.text, the
    documents' contents in output.value — what Phoenix shows as the span's input and output."""
    project = "memobs-capture"
    sent = _send_retrieval({"otlp_endpoint": phoenix.base, "otlp_protocol": "http/protobuf",
                            "capture_content": True}, project)
    [retrieval] = [s for s in sent if s.name == "search_memory playbooks"]
    spans = _arrived(phoenix, project, format(retrieval.context.trace_id, "032x"), len(sent))
    [got] = [s for s in spans if s["context"]["span_id"] == format(retrieval.context.span_id, "016x")]
    attrs = got["attributes"]
    assert attrs[sc.INPUT_VALUE] == attrs[sc.GEN_AI_MEMORY_QUERY_TEXT] == "refund over 100 EUR"
    assert [d["content"] for d in json.loads(attrs[sc.OUTPUT_VALUE])] == [p["content"] for p in PLAYBOOKS]
    node = phoenix.graphql(
        "query($id: ID!) { node(id: $id) { ... on Span { input { value } output { mimeType } } } }",
        {"id": got["id"]},
    )["node"]
    assert node == {"input": {"value": "refund over 100 EUR"}, "output": {"mimeType": "json"}}
