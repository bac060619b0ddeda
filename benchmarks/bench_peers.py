"""Section 8: the same LangChain retriever, bare and under three instrumentations.

An ``InMemoryVectorStore`` with ``DeterministicFakeEmbedding`` and
``as_retriever(search_kwargs={"k": 10})``, called with ``invoke``:

- ``bare``: no instrumentation;
- ``memobs``: ``memobs.instrument("langchain")``;
- ``openinference``: ``openinference-instrumentation-langchain``;
- ``openllmetry``: ``opentelemetry-instrumentation-langchain``.

Each variant lives in its own process (instrumentations patch LangChain
globally), all four started at once and driven in interleaved rounds over
a pipe, so that they share the machine's drift; one process runs at a time.
Every process has the same real SDK ``TracerProvider`` set-up
(``tracing.PROCESSOR``) as the global provider and passed to the
instrumentor; each reports how many spans one call exports, which shows
that the instrumentation really recorded.

The peers are installed in ``.venv-bench`` by ``benchmarks/setup_peers.sh``;
without it the peer rows say so and bare/memobs run in the current venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .common import Row, median, paired_difference, us

VARIANTS = ("bare", "memobs", "openinference", "openllmetry")
ROOT = Path(__file__).resolve().parent.parent
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"


# --- the worker (runs in its own process) ---------------------------------------

def _setup(variant: str, n_docs: int, k: int):
    from langchain_core.documents import Document
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore
    from opentelemetry import trace

    from .texts import memory_texts
    from .tracing import DropExporter, make_provider

    class CountingExporter(DropExporter):
        spans = 0

        def export(self, spans):
            CountingExporter.spans += len(spans)
            return super().export(spans)

    exporter = CountingExporter()
    provider = make_provider(exporter)
    trace.set_tracer_provider(provider)
    if variant == "memobs":
        import memobs_otel as memobs

        memobs.configure(db_path=None, tracer_provider=provider)
        if not memobs.instrument("langchain"):
            raise RuntimeError("memobs langchain plugin not available")
    elif variant == "openinference":
        from openinference.instrumentation.langchain import LangChainInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=provider)
    elif variant == "openllmetry":
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor

        LangchainInstrumentor().instrument(tracer_provider=provider)
    elif variant != "bare":
        raise ValueError(variant)

    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=64))
    texts = memory_texts(n_docs, seed=5)
    store.add_documents([Document(page_content=t, metadata={"n": i}, id=f"doc-{i}") for i, t in enumerate(texts)])
    retriever = store.as_retriever(search_kwargs={"k": k})
    return retriever, exporter


def worker(variant: str, n_docs: int, k: int) -> int:
    try:
        retriever, exporter = _setup(variant, n_docs, k)
    except Exception as exc:  # noqa: BLE001 - reported to the driver, not raised
        print(f"unavailable {type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
        return 0
    for _ in range(20):
        docs = retriever.invoke("refund policy for islands")
    before = exporter.spans
    retriever.invoke("refund policy for islands")
    print(f"ready {exporter.spans - before} {len(docs)}", flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        calls = int(command[1])
        start = time.perf_counter()
        for _ in range(calls):
            retriever.invoke("refund policy for islands")
        print(f"{(time.perf_counter() - start) / calls!r}", flush=True)
    return 0


# --- the driver ----------------------------------------------------------------

def _python() -> str:
    return str(BENCH_PYTHON) if BENCH_PYTHON.exists() else sys.executable


def run(quick: bool = False) -> list[Row]:
    calls, rounds, n_docs, k = (3, 2, 30, 10) if quick else (60, 11, 300, 10)
    python = _python()
    env = dict(os.environ, PYTHONPATH=str(ROOT), MEMOBS_ENABLED="true", OTEL_SDK_DISABLED="false")
    procs: dict[str, subprocess.Popen] = {}
    info: dict[str, str] = {}
    for variant in VARIANTS:
        procs[variant] = subprocess.Popen(
            [python, "-m", "benchmarks.bench_peers", "--worker", variant, str(n_docs), str(k)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1)
    ready = {}
    try:
        for variant, proc in procs.items():
            line = proc.stdout.readline().strip()
            if line.startswith("ready"):
                _, spans, docs = line.split()
                ready[variant] = proc
                info[variant] = f"{spans} span(s)/call, {docs} docs"
            else:
                info[variant] = line or "worker died"
        results: dict[str, list[float]] = {v: [] for v in ready}
        names = list(ready)
        for r in range(rounds):
            for variant in (names if r % 2 == 0 else names[::-1]):
                proc = ready[variant]
                proc.stdin.write(f"run {calls}\n")
                results[variant].append(float(proc.stdout.readline()))
    finally:
        for proc in procs.values():
            try:
                proc.stdin.write("quit\n")
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    rows = []
    where = "bench venv" if python == str(BENCH_PYTHON) else "current venv (run benchmarks/setup_peers.sh)"
    if "bare" not in results:
        return [Row("8", "LangChain retriever k=10: bare", "not run", info.get("bare", ""))]
    bare = results["bare"]
    rows.append(Row("8", f"LangChain retriever k={k}: bare invoke", us(median(bare)),
                    f"{n_docs} docs, InMemoryVectorStore + DeterministicFakeEmbedding; {where}"))
    overheads = {v: paired_difference(results[v], bare) for v in results if v != "bare"}
    peers = [overheads[v] for v in ("openinference", "openllmetry") if v in overheads]
    for variant in VARIANTS[1:]:
        if variant not in overheads:
            rows.append(Row("8", f"  overhead under {variant}", "not run", info.get(variant, "")))
            continue
        target, ok = "", None
        if variant == "memobs" and peers:
            target, ok = "< both peers", all(overheads["memobs"] < p for p in peers)
        rows.append(Row("8", f"  overhead under {variant}", us(overheads[variant]),
                        f"{us(median(results[variant]))} per call; {info[variant]}", target, ok))
    return rows


if __name__ == "__main__" and len(sys.argv) >= 2 and sys.argv[1] == "--worker":
    sys.exit(worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
