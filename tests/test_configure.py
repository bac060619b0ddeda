"""memobs.configure(): providers, processors, OTLP exporter selection, faults."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider

import memobs_otel as memobs
from memobs_otel import config


def exporters(handle):
    return [p.span_exporter for p in handle.processors]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@memobs.observe_retrieval(entity_type="fact", store="facts")
def search(q):
    return [{"id": "f1", "content": "one fact"}, {"id": "f2", "content": "another fact"}]


def test_sqlite_only_by_default(tmp_path):
    handle = memobs.configure(db_path=str(tmp_path / "m.db"), service_name="agent-x")
    try:
        assert [type(e).__name__ for e in exporters(handle)] == ["SQLiteSpanExporter"]
        assert handle.tracer_provider.resource.attributes["service.name"] == "agent-x"
        search("q")
    finally:
        handle.shutdown()
        handle.shutdown()  # idempotent
    stats = memobs.open_store(str(tmp_path / "m.db")).injection_stats()
    assert [(s.entity_id, s.surfaced_count) for s in stats] == [("f1", 1), ("f2", 1)]


def test_http_endpoint_argument_gets_traces_path(tmp_path):
    handle = memobs.configure(db_path=None, otlp_endpoint="http://127.0.0.1:4318")
    try:
        (exporter,) = exporters(handle)
        assert isinstance(exporter, HttpExporter)
        assert exporter._endpoint == "http://127.0.0.1:4318/v1/traces"
    finally:
        handle.shutdown()


def test_grpc_endpoint_argument():
    handle = memobs.configure(db_path=None, otlp_endpoint="http://127.0.0.1:4317", otlp_protocol="grpc")
    try:
        (exporter,) = exporters(handle)
        assert isinstance(exporter, GrpcExporter)
    finally:
        handle.shutdown()


class _Receiver(BaseHTTPRequestHandler):
    """A loopback OTLP/HTTP endpoint that keeps what it was sent."""

    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append((self.path, self.headers.get("authorization"), request))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_standard_environment_variables(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer abc")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    handle = memobs.configure(db_path=None)
    try:
        (exporter,) = exporters(handle)
        assert isinstance(exporter, HttpExporter)
        search("q")
        assert handle.force_flush() is True
    finally:
        handle.shutdown()
        server.shutdown()
    (path, auth, request), = _Receiver.received
    assert (path, auth) == ("/v1/traces", "Bearer abc")
    resource = {kv.key: kv.value.string_value for kv in request.resource_spans[0].resource.attributes}
    assert (resource["service.name"], resource["deployment.environment"]) == ("from-env", "test")
    (span,) = request.resource_spans[0].scope_spans[0].spans
    assert span.name == "search_memory facts"
    assert [e.name for e in span.events] == ["memobs.injection", "memobs.injection"]


def test_protocol_from_environment(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:14317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    handle = memobs.configure(db_path=None)
    try:
        assert isinstance(exporters(handle)[0], GrpcExporter)
    finally:
        handle.shutdown()


def test_unknown_protocol_is_value_error():
    with pytest.raises(ValueError, match="otlp_protocol must be one of http/protobuf, grpc"):
        memobs.configure(db_path=None, otlp_endpoint="http://x:1", otlp_protocol="thrift")


def test_existing_provider_gets_processors_and_is_not_shut_down(tmp_path):
    provider = TracerProvider()
    handle = memobs.configure(db_path=str(tmp_path / "m.db"), tracer_provider=provider)
    assert handle.tracer_provider is provider
    assert config._tracer_provider is provider
    search("q")
    handle.shutdown()
    # the application's provider still works after memobs shut its own processor down
    with provider.get_tracer("app").start_as_current_span("still alive") as span:
        assert span.is_recording()
    assert len(memobs.open_store(str(tmp_path / "m.db")).injection_stats()) == 2


def test_otlp_backend_down_never_reaches_the_agent(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")  # seconds; keeps shutdown's retries short
    handle = memobs.configure(db_path=str(tmp_path / "m.db"), tracer_provider=TracerProvider(),
                              otlp_endpoint=f"http://127.0.0.1:{closed_port()}")
    try:
        for _ in range(3):
            assert search("q")[0]["id"] == "f1"
    finally:
        handle.shutdown()
    # the SQLite copy is complete even though the OTLP backend was down
    stats = memobs.open_store(str(tmp_path / "m.db")).injection_stats()
    assert [(s.entity_id, s.surfaced_count) for s in stats] == [("f1", 3), ("f2", 3)]


def test_the_global_provider_path_names_memobs_with_its_version():
    # the tracer memobs makes before any configure() (the global provider's)
    # carries the package version, as the one made for a given provider does
    import subprocess
    import sys

    code = (
        "from importlib.metadata import version\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "from memobs_otel import config\n"
        "exporter = InMemorySpanExporter()\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "trace.set_tracer_provider(provider)\n"
        "config.get_tracer().start_span('a').end()\n"
        "config.use_tracer_provider(None)\n"
        "config.get_tracer().start_span('b').end()\n"
        "scopes = [(s.instrumentation_scope.name, s.instrumentation_scope.version) for s in exporter.get_finished_spans()]\n"
        "print(scopes == [('memobs_otel', version('memobs_otel'))] * 2, scopes)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("True"), out.stdout + out.stderr


def test_turn_stamping_ends_with_the_handle_and_a_new_configure_restarts_it(tmp_path):
    """configure(tracer_provider=p) adds the turn processor to p; its handle's shutdown stops it
    (the SDK cannot remove a processor), so p's later spans carry no memobs.turn.id until
    memobs is configured on p again."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("app")

    def span_turn() -> str | None:
        exporter.clear()
        with memobs.context(user_id="u"):
            tracer.start_span("llm").end()
        (span,) = exporter.get_finished_spans()
        return span.attributes.get("memobs.turn.id")

    try:
        handle = memobs.configure(db_path=None, tracer_provider=provider)
        first = span_turn()
        assert first is not None and len(first) == 16
        handle.shutdown()
        assert span_turn() is None
        handle = memobs.configure(db_path=None, tracer_provider=provider)
        assert span_turn() is not None
        handle.shutdown()
    finally:
        config.use_tracer_provider(None)
