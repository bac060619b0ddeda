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
- one whole OTLP/JSON document, pretty-printed over many lines, as an
  OTLP/HTTP JSON body or opentelemetry-proto's ``examples/trace.json`` is:
  tried when the first line is not JSON by itself but begins an object; if
  the whole text is not one JSON value either, the file is read as lines;
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
complete spans behind. The store's ``Writer`` makes a value SQLite cannot
bind storable itself (:mod:`memobs_otel.store.sanitise`); should a ``write``
still refuse a batch with a value error, it is written again line by line,
so only the offending line is lost (and counted bad), never its neighbours. Spans already in the store are skipped, so re-ingesting a file (or
a file that overlaps what the exporter wrote live) adds nothing twice.

Limits (hostile files: a decompression bomb, a line of a gigabyte, JSON
nested 10^5 deep), set by :class:`IngestLimits` (``--max-line-mb`` and
``--max-decompressed-mb`` on the command line):

- ``max_line_bytes`` (64 MiB): the longest line, length-prefixed record
  (after decompression) or whole-file document read; a longer one is read
  past in bounded pieces and counted as one bad line. Memory grows with this
  limit: one line is held whole while it is parsed, as Python objects up to
  ~20 times its size for a hostile line of tiny objects (``[{},{},...]``),
  so the worst case at the default is ~1.5 GB; lower it on a small machine.
  A Collector line is at most ``send_batch_max_size`` spans (2048 in
  ``collector-config.yaml``: ~17 MB of memobs retrievals of 10 entities).
- ``max_decompressed_bytes``: the most bytes one compressed file may give;
  past it the rest of that file is skipped and reported as one bad entry
  (the lines wholly within the limit are ingested). By default
  ``AUTO_RATIO`` (100) times the file's own size, and at least
  ``max_line_bytes``: OTLP/JSON compresses 10-25 times, a bomb thousands of
  times. Decompression is streamed in small input pieces, so no step holds
  more than ~8 MiB of output whatever the ratio. Time is bounded too, as it
  is linear in the data read: runs of blank lines are skipped in C, other
  tiny lines cost a few µs each (64 MiB of ``{}`` lines: about two minutes).
- JSON nesting is bounded by Python's recursion limit (~1000 levels; OTLP
  needs about 10): a deeper line is one bad line ("nested too deep").
- Values SQLite cannot store (times and integers past 64 bits, lone
  surrogate escapes) are not bad lines: the store's writer clamps them,
  stores them as text or replaces them by U+FFFD, as for the exporter's
  spans, and counts them in the file (``values-sanitised``).

With the defaults, a 30 KB zstd file of 10^9 zero bytes is one bad entry and
the process stays under 300 MB (``tests/test_ingest_hostile.py``).
"""

from __future__ import annotations

import io
import os
import re
import sqlite3
import zlib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from memobs_otel.otlp_json import OtlpJsonError, decode_line, decode_request, parse
from memobs_otel.store.records import SpanRecord

__all__ = ["BadLine", "FileReport", "IngestLimits", "IngestReport", "ingest_files", "read_file_spans"]

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_BATCH_SPANS = 2000
MAX_REPORTED_BAD_LINES = 1000  # per file; the count stays exact past it
# OTLP/JSON compresses ~10-25x (zstd or gzip); a bomb ~1000x (gzip) to
# ~30 000x (zstd). Past this ratio a file is not telemetry.
AUTO_RATIO = 100

_MAX_FRAME = 1 << 30  # a length prefix past 1 GiB is junk, not a frame
_READ_BUFFER = 1 << 20
_SKIP_PIECE = 1 << 20  # a line or record past the limit is read and dropped this much at a time
# Compressed input is fed to the decoder this much at a time, so that one
# call yields at most ~8 MiB whatever the ratio: zstd reaches ~32 000:1 (a
# 4-byte RLE block makes 128 KiB), deflate 1032:1. Small pieces cost no
# measurable time against large ones.
_PIECE = {"zstd": 256, "gzip": 8 << 10}
_NONZERO = re.compile(rb"[^\0]")
_BLANK_RUN = re.compile(rb"[ \t\r\n]*\n")  # blank lines, up to the last newline of the run
# what a writer raises for a value it cannot store (as opposed to a database
# that cannot be written: sqlite3.OperationalError and the rest propagate)
_VALUE_ERRORS = (ValueError, TypeError, OverflowError, sqlite3.InterfaceError, sqlite3.DataError,
                 sqlite3.IntegrityError, sqlite3.ProgrammingError)


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on what one hostile file can cost (see the module docstring).

    ``max_decompressed_bytes=None`` (the default) is automatic: a compressed
    file may inflate to ``AUTO_RATIO`` times its own size, and to at least
    ``max_line_bytes``.
    """

    max_line_bytes: int = 64 << 20
    max_decompressed_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.max_line_bytes < 1 or (self.max_decompressed_bytes is not None and self.max_decompressed_bytes < 1):
            raise ValueError("ingest limits must be at least 1 byte")

    def decompressed_limit(self, compressed_size: int) -> int:
        """The most bytes a compressed file of ``compressed_size`` bytes may give."""
        if self.max_decompressed_bytes is not None:
            return self.max_decompressed_bytes
        return max(self.max_line_bytes, AUTO_RATIO * compressed_size)

    def past_decompressed_limit(self, compressed_size: int) -> str:
        """The reason reported when a file passes its decompressed limit."""
        limit = _mib(self.decompressed_limit(compressed_size))
        how = ("--max-decompressed-mb" if self.max_decompressed_bytes is not None
               else f"{AUTO_RATIO} times the file's size, at least --max-line-mb; see --max-decompressed-mb")
        return f"decompressed data past the {limit} limit ({how}); the rest of the file was not read"


@dataclass(frozen=True)
class BadLine:
    line: int  # 1-based line (or record, for framed files)
    reason: str


@dataclass
class FileReport:
    path: str
    format: str = ""  # "json lines", "json document", "zstd json lines", "length-prefixed records", ...
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
    limits: IngestLimits | None = None,
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
    limits = limits or IngestLimits()
    report = IngestReport()
    for path in paths:
        file_report = FileReport(path=str(path))
        report.files.append(file_report)
        batch: list[tuple[int, list[SpanRecord]]] = []  # (line number, its spans)
        size = 0
        try:
            for number, records in _good_lines(path, file_report, on_progress, limits):
                batch.append((number, records))
                size += len(records)
                if size >= batch_spans:
                    file_report.added += _write_batch(write, conn, batch, file_report)
                    batch, size = [], 0
        except _Unreadable as exc:
            file_report.error = str(exc)
        if batch:  # every line read before a read error is still ingested
            file_report.added += _write_batch(write, conn, batch, file_report)
    return report


def read_file_spans(
    path: str | os.PathLike[str], limits: IngestLimits | None = None
) -> tuple[list[SpanRecord], FileReport]:
    """Every span of the good lines of one file, with its report (no store)."""
    report = FileReport(path=str(path))
    spans: list[SpanRecord] = []
    try:
        for _, records in _good_lines(path, report, None, limits or IngestLimits()):
            spans.extend(records)
    except _Unreadable as exc:
        report.error = str(exc)
    return spans, report


def _write_batch(write: Callable, conn: Any, batch: list[tuple[int, list[SpanRecord]]],
                 report: FileReport) -> int:
    """Write ``batch`` in one transaction; if the writer refuses a value in
    it, write it again line by line so that only the offending lines are
    lost (and counted bad), never their neighbours."""
    try:
        return write(conn, [record for _, records in batch for record in records])
    except _VALUE_ERRORS:
        pass  # the batch was rolled back whole
    added = 0
    for number, records in batch:
        try:
            added += write(conn, records)
        except _VALUE_ERRORS as exc:
            report.lines -= 1
            report.spans -= len(records)
            report.add_bad(number, f"cannot be stored ({type(exc).__name__}: {_reason(exc)})")
    report.bad.sort(key=lambda bad: bad.line)
    return added


# --- reading --------------------------------------------------------------

def _good_lines(
    path: str | os.PathLike[str],
    report: FileReport,
    on_progress: Callable[[str, int], None] | None,
    limits: IngestLimits,
) -> Iterator[tuple[int, list[SpanRecord]]]:
    """Yield ``(line number, spans)`` of each good line; count the bad ones in ``report``."""
    raw = _open(path)
    with raw:
        progress = (lambda: on_progress(report.path, raw.tell())) if on_progress else None
        stream, compressed = _content(raw, report.path, limits)
        if _looks_framed(stream.peek(5)[:5]):
            report.format = "length-prefixed records" + (f" in {compressed}" if compressed else "")
            yield from _framed(stream, report, progress, limits, os.fstat(raw.fileno()).st_size)
        else:
            report.format = f"{compressed} json lines".strip()
            yield from _lines(stream, report, progress, limits, lambda: _whole(path, limits))
        if progress:
            progress()


def _content(raw: io.BufferedReader, path: str, limits: IngestLimits) -> tuple[Any, str]:
    """The file's content as a readable stream (decompressed if need be) and
    the compression's name ("" for none); ``_Unreadable`` if it has none."""
    head = raw.peek(4)[:4]
    if not head:
        raise _Unreadable(f"{path}: empty file")
    if head[:2] == GZIP_MAGIC:
        compressed = "gzip"
    elif head == ZSTD_MAGIC:
        compressed = "zstd"
    else:
        return _Chunks(iter(partial(raw.read, _READ_BUFFER), b"")), ""
    size = os.fstat(raw.fileno()).st_size
    stream = _Chunks(_decompressed_chunks(raw, compressed, path, limits.decompressed_limit(size),
                                          limits.past_decompressed_limit(size)))
    try:
        inner = stream.peek(5)[:5]
    except _StreamBroken as exc:
        raise _Unreadable(f"{path}: not a readable {compressed} file ({exc})") from None
    if not inner:
        raise _Unreadable(f"{path}: empty {compressed} file")
    return stream, compressed


def _whole(path: str | os.PathLike[str], limits: IngestLimits) -> bytes | None:
    """The whole (decompressed) content of ``path`` if it is within
    ``max_line_bytes`` and reads without error, else ``None``."""
    try:
        with _open(path) as raw:
            stream, _ = _content(raw, str(path), limits)
            data = stream.read(limits.max_line_bytes + 1)
            stream.peek(1)  # a corrupt or cut tail after the data read is an error here too
    except (_Unreadable, _StreamBroken):
        return None
    return data if len(data) <= limits.max_line_bytes else None


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


def _mib(size: int) -> str:
    return f"{size >> 20} MiB" if not size % (1 << 20) else f"{size / (1 << 20):.1f} MiB"


def _read_lines(stream: _Chunks, limit: int) -> Iterator[bytes | int | None]:
    """Each line of ``stream`` with its newline; ``None`` for a line longer
    than ``limit`` bytes (read past and dropped in bounded pieces); for a run
    of blank lines, how many (skipped at C speed: a stream of newlines is
    the cheapest bomb to make)."""
    while True:
        blank = stream.skip_blank_lines()
        if blank:
            yield blank
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit:
            while not line.endswith(b"\n"):
                line = stream.readline(_SKIP_PIECE)
                if not line:
                    break
            yield None
        else:
            yield line


def _lines(stream: _Chunks, report: FileReport, progress: Callable[[], None] | None, limits: IngestLimits,
           whole: Callable[[], bytes | None]) -> Iterator[tuple[int, list[SpanRecord]]]:
    number = 0
    first = True  # no non-blank line seen yet
    lines = _read_lines(stream, limits.max_line_bytes)
    while True:
        try:
            line = next(lines, b"")
        except _StreamBroken as exc:
            # a truncated or corrupt compressed stream: what came before is kept
            report.add_bad(number + 1, str(exc))
            return
        if line.__class__ is int:
            number += line
            continue
        if not line and line is not None:
            return
        number += 1
        if progress and number % 256 == 0:
            progress()
        if line is None:
            report.add_bad(number, f"line longer than the {_mib(limits.max_line_bytes)} limit (--max-line-mb)")
            first = False
            continue
        if not line.strip():
            continue
        try:
            records = decode_line(line)
        except OtlpJsonError as exc:
            if first and _may_begin_document(line, exc):
                document = _document(whole(), report)
                if document is not None:
                    if document:
                        yield 1, document
                    return
            if not line.endswith(b"\n"):
                report.add_bad(number, f"truncated last line ({exc})")
            else:
                report.add_bad(number, str(exc))
            first = False
            continue
        first = False
        report.lines += 1
        report.spans += len(records)
        yield number, records


def _may_begin_document(line: bytes, exc: OtlpJsonError) -> bool:
    """The first line is not JSON by itself but opens an object: perhaps a
    pretty-printed document."""
    return str(exc).startswith("not JSON") and line.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _document(text: bytes | None, report: FileReport) -> list[SpanRecord] | None:
    """The spans of ``text`` read as one JSON document, counted in ``report``
    (``[]`` if it is one but not trace data: one bad entry); ``None`` if the
    text is not one JSON value (too big, or not JSON): read it as lines."""
    if text is None:
        return None
    try:
        message = parse(text)
    except OtlpJsonError:
        return None
    report.format = report.format.replace("json lines", "json document")
    try:
        records = decode_request(message)
    except (OtlpJsonError, RecursionError) as exc:
        reason = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
        report.add_bad(1, f"{reason} (the file read as one JSON document)")
        return []
    report.lines += 1
    report.spans += len(records)
    return records


def _framed(stream: _Chunks, report: FileReport, progress: Callable[[], None] | None,
            limits: IngestLimits, file_size: int) -> Iterator[tuple[int, list[SpanRecord]]]:
    number = 0
    decompressed = 0  # bytes of all zstd records so far
    max_decompressed = limits.decompressed_limit(file_size)
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
            if size > limits.max_line_bytes:
                skipped = _skip(stream, size)
                if skipped < size:
                    report.add_bad(number, f"truncated last record ({skipped} of {size} bytes)")
                    return
                report.add_bad(number, f"record of {size} bytes, past the "
                                       f"{_mib(limits.max_line_bytes)} limit (--max-line-mb)")
                continue
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
                payload = _zstd_record(payload, report.path, limits.max_line_bytes)
                decompressed += len(payload)
                if decompressed > max_decompressed:
                    report.add_bad(number, limits.past_decompressed_limit(file_size))
                    return
            records = _decode_payload(payload)
        except OtlpJsonError as exc:
            report.add_bad(number, str(exc))
            continue
        report.lines += 1
        report.spans += len(records)
        yield number, records


def _skip(stream: Any, size: int) -> int:
    """Read and drop ``size`` bytes in bounded pieces; how many there were."""
    done = 0
    while done < size:
        piece = stream.read(min(_SKIP_PIECE, size - done))
        if not piece:
            break
        done += len(piece)
    return done


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
    except DecodeError:  # protobuf bounds nesting itself (100 levels)
        raise OtlpJsonError("neither JSON nor OTLP protobuf") from None
    if not message.resource_spans:
        raise OtlpJsonError("neither JSON nor OTLP protobuf with spans")
    try:
        return decode_request(MessageToDict(message))
    except RecursionError:
        raise OtlpJsonError("nested too deep") from None


# --- compressed streams ---------------------------------------------------

class _StreamBroken(Exception):
    """A compressed stream ended early, is corrupt or past its size limit;
    everything before it was delivered."""


def _zstd_module(path: str) -> Any:
    try:
        import zstandard
    except ImportError:
        raise _Unreadable(
            f"{path}: zstd-compressed; reading it needs the 'zstandard' package (pip install zstandard)"
        ) from None
    return zstandard


def _decompressed_chunks(raw: io.BufferedReader, kind: str, path: str, max_total: int,
                         past_limit: str) -> Iterator[bytes]:
    """Decompress ``raw`` in bounded chunks, across concatenated frames/members.

    Unlike ``gzip.open`` or zstandard's stream reader, every byte decoded
    before a truncation or corruption is yielded first, and a stream cut
    inside a frame is told apart from a complete one (zstandard's reader
    silently stops there). Input goes to the decoder in small pieces
    (``_PIECE``) so no chunk exceeds ~8 MiB; past ``max_total`` bytes in all
    the stream breaks (``past_limit`` says why). Zero bytes between or after
    frames are padding.
    """
    if kind == "zstd":
        zstandard = _zstd_module(path)
        errors: tuple[type[BaseException], ...] = (zstandard.ZstdError,)
        new = zstandard.ZstdDecompressor().decompressobj
    else:
        errors = (zlib.error,)
        new = lambda: zlib.decompressobj(wbits=31)  # noqa: E731 - gzip container
    piece_size = _PIECE[kind]
    decoder = new()
    fed = False  # the current decoder has been given input
    total = 0
    data, pos = b"", 0  # input read from the file, and how much of it the decoders took
    while True:
        if pos >= len(data):
            data, pos = raw.read(_READ_BUFFER), 0
            if not data:
                break
        if not fed:  # between frames: skip zero padding
            found = _NONZERO.search(data, pos)
            if found is None:
                pos = len(data)
                continue
            pos = found.start()
        piece = data[pos:pos + piece_size]
        pos += len(piece)
        try:
            out = decoder.decompress(piece)
        except errors as exc:
            raise _StreamBroken(f"corrupt {kind} data ({_reason(exc)})") from None
        fed = True
        if out:
            total += len(out)
            if total > max_total:  # deliver exactly the first max_total bytes
                if len(out) > total - max_total:
                    yield out[:len(out) - (total - max_total)]
                raise _StreamBroken(past_limit)
            yield out
        if decoder.eof:
            pos -= len(decoder.unused_data)  # the next frame or member starts there
            decoder, fed = new(), False
    if fed and not decoder.eof:
        raise _StreamBroken(f"{kind} stream ends early (file truncated?)")


def _zstd_record(payload: bytes, path: str, limit: int) -> bytes:
    """One length-prefixed zstd record, decompressed; ``OtlpJsonError`` past ``limit`` bytes."""
    zstandard = _zstd_module(path)
    # a frame need not record its content size: decompressobj reads both kinds
    decoder = zstandard.ZstdDecompressor().decompressobj()
    parts, size = [], 0
    piece_size = _PIECE["zstd"]
    try:
        for start in range(0, len(payload), piece_size):
            out = decoder.decompress(payload[start:start + piece_size])
            size += len(out)
            if size > limit:
                raise OtlpJsonError(f"record decompresses past the {_mib(limit)} limit (--max-line-mb)")
            parts.append(out)
            if decoder.eof:
                break
    except zstandard.ZstdError as exc:
        raise OtlpJsonError(f"corrupt zstd record ({_reason(exc)})") from None
    return b"".join(parts)


class _Chunks:
    """``read``/``readline``/``peek`` over a file's chunks, as read or decompressed.

    A broken stream raises ``_StreamBroken`` only once the data decoded
    before the break has been consumed. ``read`` and ``readline`` gather a
    long result from whole chunks and join it once (no quadratic copying).
    """

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self._error: _StreamBroken | None = None
        self._done = False

    def _fill(self) -> bool:
        """Append the next chunk to what is left of the buffer; False at the end."""
        if self._done:
            return False
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._done = True
            return False
        except _StreamBroken as exc:
            self._done, self._error = True, exc
            return False
        # all of the buffer is usually consumed here: b"" + chunk is chunk, no copy
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
        parts, need = [], n
        while need > 0:
            available = len(self._buf) - self._pos
            if not available:
                if not self._fill():
                    break
                continue
            take = min(available, need)
            parts.append(self._buf[self._pos:self._pos + take])
            self._pos += take
            need -= take
        if not parts and self._error is not None:
            raise self._error
        return b"".join(parts)

    def skip_blank_lines(self) -> int:
        """Skip the blank lines (whitespace only) that come next; how many."""
        count = 0
        while True:
            if self._pos >= len(self._buf) and not self._fill():
                return count
            run = _BLANK_RUN.match(self._buf, self._pos)
            if run is None:
                return count
            count += self._buf.count(b"\n", self._pos, run.end())
            self._pos = run.end()
            if self._pos < len(self._buf):
                return count  # a line with content follows (or whitespace without a newline yet)

    def readline(self, limit: int) -> bytes:
        """Up to ``limit`` bytes, up to and including the next newline."""
        parts, size = [], 0
        while size < limit:
            available = len(self._buf) - self._pos
            if not available:
                if not self._fill():
                    if self._error is not None:
                        raise self._error  # a partial last line belongs to the break
                    break
                continue
            stop = self._pos + min(available, limit - size)
            end = self._buf.find(b"\n", self._pos, stop)
            if end >= 0:
                stop = end + 1
            parts.append(self._buf[self._pos:stop])
            size += stop - self._pos
            self._pos = stop
            if end >= 0:
                break
        return b"".join(parts)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _writer_for(conn):
    """``write(conn, records)`` through one ``Writer`` for the whole run."""
    from memobs_otel.store.writer import Writer

    writer = Writer(conn)
    return lambda _conn, records: writer.write(records)
