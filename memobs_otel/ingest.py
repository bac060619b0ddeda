"""Ingest OTLP/JSON files written by the OpenTelemetry Collector into a store.

``memobs ingest FILE...`` runs this: point the Collector's ``file`` exporter
(see ``collector-config.yaml``) at a path, then ingest that file — or its
rotated backups — into the same SQLite store the in-process exporter writes.
Every span becomes a ``SpanRecord`` and goes through the store's own writer,
so the injection, citation and write rows are exactly those the
``SQLiteSpanExporter`` derives for the same spans.

Formats, told apart by their first bytes, not by the file name:

- OTLP/JSON lines: one ``ExportTraceServiceRequest`` per line (the exporter's
  default, ``format: json``);
- ``compression: zstd``: every request is compressed on its own and written
  after a 4-byte big-endian length (the exporter's framing for compressed or
  ``format: proto`` output — protobuf payloads are read too);
- a zstd stream of JSON lines (the exporter's ``exporter.file.nativeCompression``
  feature gate, or ``zstd file.json``), and a gzip'ed file of JSON lines
  (``gzip file.json`` on a rotated backup).

Robustness: a line that is not JSON, not trace data, or carries a bad id or
time is counted and reported with its line number (record number for framed
files), and the rest of the file is ingested. A truncated last line or
compressed stream ends the file with one bad entry. Spans are written in
batches of whole lines, one transaction per batch, so a crash leaves only
complete spans behind; spans already in the store are skipped, so
re-ingesting a file (or a file that overlaps what the exporter wrote live)
adds nothing twice.
"""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from memobs_otel.otlp_json import OtlpJsonError, decode_line, decode_request
from memobs_otel.store.records import SpanRecord

__all__ = ["BadLine", "FileReport", "IngestReport", "ingest_files", "read_file_spans"]

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_BATCH_SPANS = 2000
MAX_REPORTED_BAD_LINES = 1000  # per file; the count stays exact past it

_MAX_FRAME = 1 << 30  # a length prefix past 1 GiB is junk, not a frame
_READ_BUFFER = 1 << 20


@dataclass(frozen=True)
class BadLine:
    line: int  # 1-based line (or record, for framed files)
    reason: str


@dataclass
class FileReport:
    path: str
    format: str = ""  # "json lines", "zstd frames", "zstd json lines", "gzip json lines"
    error: str | None = None  # the whole file could not be read
    lines: int = 0  # good lines (requests) read
    spans: int = 0  # spans in good lines
    added: int = 0  # spans new to the store
    bad_count: int = 0
    bad: list[BadLine] = field(default_factory=list)

    def add_bad(self, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad) < MAX_REPORTED_BAD_LINES:
            self.bad.append(BadLine(line, reason))


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def spans(self) -> int:
        return sum(f.spans for f in self.files)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def bad_count(self) -> int:
        return sum(f.bad_count for f in self.files)

    @property
    def failed_files(self) -> list[FileReport]:
        return [f for f in self.files if f.error is not None]

    @property
    def anything_read(self) -> bool:
        """True when at least one line of trace data was read."""
        return self.lines > 0


class _Unreadable(Exception):
    """The whole file cannot be read; the message is one line for the user."""


# --- public API -----------------------------------------------------------

def ingest_files(
    conn: Any,
    paths: Iterable[str | os.PathLike[str]],
    *,
    write: Callable[[Any, list[SpanRecord]], int] | None = None,
    batch_spans: int = DEFAULT_BATCH_SPANS,
    on_progress: Callable[[str, int], None] | None = None,
) -> IngestReport:
    """Read every file and write its spans into the store behind ``conn``.

    ``write(conn, records) -> int`` stores one batch in one transaction and
    returns how many spans were new (default: one store ``Writer`` for the run).
    ``on_progress(path, bytes_read)`` is called as each file is read.
    A file that cannot be read at all is reported in its ``FileReport.error``;
    a database error propagates after the batches before it were committed.
    """
    if write is None:
        write = _writer_for(conn)
    report = IngestReport()
    for path in paths:
        file_report = FileReport(path=str(path))
        report.files.append(file_report)
        batch: list[SpanRecord] = []
        try:
            for records in _good_lines(path, file_report, on_progress):
                batch.extend(records)
                if len(batch) >= batch_spans:
                    file_report.added += write(conn, batch)
                    batch = []
        except _Unreadable as exc:
            file_report.error = str(exc)
        if batch:  # every line read before a read error is still ingested
            file_report.added += write(conn, batch)
    return report


def read_file_spans(path: str | os.PathLike[str]) -> tuple[list[SpanRecord], FileReport]:
    """Every span of the good lines of one file, with its report (no store)."""
    report = FileReport(path=str(path))
    spans: list[SpanRecord] = []
    try:
        for records in _good_lines(path, report, None):
            spans.extend(records)
    except _Unreadable as exc:
        report.error = str(exc)
    return spans, report


# --- reading --------------------------------------------------------------

def _good_lines(
    path: str | os.PathLike[str],
    report: FileReport,
    on_progress: Callable[[str, int], None] | None,
) -> Iterator[list[SpanRecord]]:
    """Yield the spans of each good line; count the bad ones in ``report``."""
    raw = _open(path)
    with raw:
        progress = (lambda: on_progress(report.path, raw.tell())) if on_progress else None
        head = raw.peek(4)[:4]
        if not head:
            raise _Unreadable(f"{report.path}: empty file")
        if head[:2] == GZIP_MAGIC:
            compressed = "gzip"
            stream: Any = _Decompressed(_decompressed_chunks(raw, "gzip", report.path))
        elif head == ZSTD_MAGIC:
            compressed = "zstd"
            stream = _Decompressed(_decompressed_chunks(raw, "zstd", report.path))
        else:
            compressed = ""
            stream = raw
        try:
            inner = stream.peek(5)[:5]
        except _StreamBroken as exc:
            raise _Unreadable(f"{report.path}: not a readable {compressed} file ({exc})") from None
        if not inner:
            raise _Unreadable(f"{report.path}: empty {compressed} file" if compressed else f"{report.path}: empty file")
        if _looks_framed(inner):
            report.format = "length-prefixed records" + (f" in {compressed}" if compressed else "")
            yield from _framed(stream, report, progress)
        else:
            report.format = f"{compressed} json lines".strip()
            yield from _lines(stream, report, progress)
        if progress:
            progress()


def _open(path: str | os.PathLike[str]) -> io.BufferedReader:
    name = str(path)
    p = Path(name)
    if p.is_dir():
        raise _Unreadable(f"{name}: is a directory, not a file")
    try:
        return open(p, "rb", buffering=_READ_BUFFER)
    except FileNotFoundError:
        raise _Unreadable(f"{name}: no such file") from None
    except PermissionError:
        raise _Unreadable(f"{name}: permission denied") from None
    except OSError as exc:
        raise _Unreadable(f"{name}: cannot open ({exc.strerror or exc})") from None


def _looks_framed(head: bytes) -> bool:
    """A 4-byte big-endian length then a zstd frame, JSON or protobuf."""
    if len(head) < 5 or head[:1] in b"{[ \t\r\n":
        return False
    size = int.from_bytes(head[:4], "big")
    return 0 < size <= _MAX_FRAME and head[4:5] in (ZSTD_MAGIC[:1], b"{", b"\x0a")


def _lines(stream: Any, report: FileReport, progress: Callable[[], None] | None) -> Iterator[list[SpanRecord]]:
    number = 0
    while True:
        try:
            line = stream.readline()
        except _StreamBroken as exc:
            # a truncated or corrupt compressed stream: what came before is kept
            report.add_bad(number + 1, str(exc))
            return
        if not line:
            return
        number += 1
        if progress and number % 256 == 0:
            progress()
        if not line.strip():
            continue
        try:
            records = decode_line(line)
        except OtlpJsonError as exc:
            if not line.endswith(b"\n"):
                report.add_bad(number, f"truncated last line ({exc})")
            else:
                report.add_bad(number, str(exc))
            continue
        report.lines += 1
        report.spans += len(records)
        yield records


def _framed(stream: Any, report: FileReport, progress: Callable[[], None] | None) -> Iterator[list[SpanRecord]]:
    number = 0
    decompressor = None
    while True:
        try:
            prefix = stream.read(4)
            if not prefix:
                return
            number += 1
            size = int.from_bytes(prefix, "big")
            if len(prefix) < 4 or size > _MAX_FRAME:
                report.add_bad(number, "bad record length: the rest of the file cannot be framed")
                return
            payload = stream.read(size)
        except _StreamBroken as exc:
            report.add_bad(number + 1, str(exc))
            return
        if len(payload) < size:
            report.add_bad(number, f"truncated last record ({len(payload)} of {size} bytes)")
            return
        if progress and number % 64 == 0:
            progress()
        try:
            if payload[:4] == ZSTD_MAGIC:
                if decompressor is None:
                    decompressor = _zstd_module(report.path).ZstdDecompressor()
                payload = _zstd_decompress(decompressor, payload)
            records = _decode_payload(payload)
        except OtlpJsonError as exc:
            report.add_bad(number, str(exc))
            continue
        report.lines += 1
        report.spans += len(records)
        yield records


def _decode_payload(payload: bytes) -> list[SpanRecord]:
    if payload.lstrip()[:1] == b"{":
        return decode_line(payload)
    return _decode_protobuf(payload)


def _decode_protobuf(payload: bytes) -> list[SpanRecord]:
    # format: proto — the exporter's other format; decoded through the same
    # JSON mapping so both paths share one converter.
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    message = ExportTraceServiceRequest()
    try:
        message.ParseFromString(payload)
    except DecodeError:
        raise OtlpJsonError("neither JSON nor OTLP protobuf") from None
    if not message.resource_spans:
        raise OtlpJsonError("neither JSON nor OTLP protobuf with spans")
    return decode_request(MessageToDict(message))


# --- compressed streams ---------------------------------------------------

class _StreamBroken(Exception):
    """A compressed stream ended early or is corrupt; everything before it was delivered."""


def _zstd_module(path: str) -> Any:
    try:
        import zstandard
    except ImportError:
        raise _Unreadable(
            f"{path}: zstd-compressed; reading it needs the 'zstandard' package (pip install zstandard)"
        ) from None
    return zstandard


def _decompressed_chunks(raw: io.BufferedReader, kind: str, path: str) -> Iterator[bytes]:
    """Decompress ``raw`` chunk by chunk, across concatenated frames/members.

    Unlike ``gzip.open`` or zstandard's stream reader, every byte decoded
    before a truncation or corruption is yielded first, and a stream cut
    between frames is told apart from a complete one (zstandard's reader
    silently stops there).
    """
    if kind == "zstd":
        zstandard = _zstd_module(path)
        errors: tuple[type[BaseException], ...] = (zstandard.ZstdError,)
        new = zstandard.ZstdDecompressor().decompressobj
    else:
        errors = (zlib.error,)
        new = lambda: zlib.decompressobj(wbits=31)  # noqa: E731 - gzip container
    decoder = new()
    pending = b""  # input not yet given to a decoder
    fed = False  # the current decoder has been given input
    while True:
        chunk = pending or raw.read(_READ_BUFFER)
        pending = b""
        if not chunk:
            break
        try:
            out = decoder.decompress(chunk)
        except errors as exc:
            raise _StreamBroken(f"corrupt {kind} data ({_reason(exc)})") from None
        fed = True
        if out:
            yield out
        if decoder.eof:
            pending = decoder.unused_data
            if pending.strip(b"\0"):  # another frame or member follows
                decoder, fed = new(), False
            else:
                pending = b""  # zero padding after the last frame
    if fed and not decoder.eof:
        raise _StreamBroken(f"{kind} stream ends early (file truncated?)")


class _Decompressed:
    """``read``/``readline``/``peek`` over decompressed chunks.

    A broken stream raises ``_StreamBroken`` only once the data decoded
    before the break has been consumed.
    """

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self._error: _StreamBroken | None = None
        self._done = False

    def _fill(self) -> bool:
        if self._done:
            if self._error is not None and self._pos >= len(self._buf):
                raise self._error
            return False
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._done = True
            return False
        except _StreamBroken as exc:
            self._done, self._error = True, exc
            return False
        self._buf = self._buf[self._pos:] + chunk
        self._pos = 0
        return True

    def peek(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n and self._fill():
            pass
        if len(self._buf) == self._pos and self._error is not None:
            raise self._error
        return self._buf[self._pos:self._pos + n]

    def read(self, n: int) -> bytes:
        data = self.peek(n)
        self._pos += len(data)
        return data

    def readline(self) -> bytes:
        while True:
            end = self._buf.find(b"\n", self._pos)
            if end >= 0:
                line = self._buf[self._pos:end + 1]
                self._pos = end + 1
                return line
            if not self._fill():
                if self._error is not None:
                    raise self._error  # a partial last line belongs to the break
                line = self._buf[self._pos:]
                self._pos = len(self._buf)
                return line


def _zstd_decompress(decompressor: Any, payload: bytes) -> bytes:
    import zstandard

    try:
        # a frame need not record its content size: decompressobj reads both kinds
        return decompressor.decompressobj().decompress(payload)
    except zstandard.ZstdError as exc:
        raise OtlpJsonError(f"corrupt zstd record ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _writer_for(conn):
    """``write(conn, records)`` through one ``Writer`` for the whole run."""
    from memobs_otel.store.writer import Writer

    writer = Writer(conn)
    return lambda _conn, records: writer.write(records)
