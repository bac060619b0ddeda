"""Section 8: the same LangChain retriever, bare and under three instrumentations.

An ``InMemoryVectorStore`` with ``DeterministicFakeEmbedding`` and
``as_retriever(search_kwargs={"k": 10})``, called with ``invoke``:

- ``bare``: no instrumentation;
- ``memobs``: ``memobs.instrument("langchain")``;
- ``openinference``: ``openinference-instrumentation-langchain``;
- ``openllmetry``: ``opentelemetry-instrumentation-langchain``;
- ``memobs+openinference``: memobs instrumented on top of an active
  OpenInference instrumentation (memobs then records onto OpenInference's
  retriever span instead of starting its own); switched on and off in its
  process is memobs alone, OpenInference staying on, so its overhead is what
  memobs adds to an OpenInference set-up. Compared round by round with
  memobs's overhead over the bare call (SPEC §10: no more than memobs alone);
- ``hand``: the very span memobs records (same name, attributes and 10
  events, checked), written by hand around ``invoke`` with every attribute
  precomputed: what the OTel SDK alone costs for it. memobs minus hand is
  memobs's own work (extraction, measurement lookups, scores, guards).

``sdk_floor`` measures, in the driver process, what 10 ``add_event`` calls
with memobs's 7 attributes each cost on a span, alone.

Each variant lives in its own process (instrumentations patch LangChain
globally), all started at once and driven in interleaved rounds over a pipe,
so that they share the machine's drift; one process runs at a time.

Overhead is measured *inside each process*: every round times one batch with
the instrumentation on and one with it off (uninstrumented by its own
``uninstrument()``; the order alternates), and the figure is the median of
those paired differences. Comparing a variant's process with the bare
process instead would add the processes' own difference on the ~1 ms
LangChain call (memory layout, caches: on this machine the same bare code
runs ±20 % apart in two processes, i.e. ±200 µs, more than the overheads
being compared). The bare process's time is still shown for scale.
memobs is then compared with each peer round by round (``peer_differences``:
the median of memobs's overhead minus the peer's in the same round, with the
sign test's 95 % interval), which says whether the run can tell them apart.
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

from .common import Row, compare, median, paired_difference, quartiles, round_order, us

VARIANTS = ("bare", "memobs", "openinference", "openllmetry")
PEERS = VARIANTS[2:]  # what memobs is compared with
STACKED = "memobs+openinference"  # memobs switched on and off, OpenInference always on
WORKERS = VARIANTS + (STACKED, "hand")  # hand: memobs's span written by hand, the SDK floor
ROOT = Path(__file__).resolve().parent.parent
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
QUERY = "refund policy for islands"


# --- the worker (runs in its own process) ---------------------------------------

def _setup(variant: str, n_docs: int, k: int):
    from opentelemetry import trace

    from .tracing import DropExporter, make_provider

    class CountingExporter(DropExporter):
        spans = 0
        last = None

        def export(self, spans):
            CountingExporter.spans += len(spans)
            CountingExporter.last = spans[-1]
            return super().export(spans)

    exporter = CountingExporter()
    provider = make_provider(exporter)
    trace.set_tracer_provider(provider)
    on = off = lambda: None  # noqa: E731 - bare: nothing to switch
    if variant == "memobs":
        import memobs_otel as memobs

        memobs.configure(db_path=None, tracer_provider=provider)
        if not memobs.instrument("langchain"):
            raise RuntimeError("memobs langchain plugin not available")
        on, off = (lambda: memobs.instrument("langchain")), (lambda: memobs.uninstrument("langchain"))
    elif variant == "openinference":
        from openinference.instrumentation.langchain import LangChainInstrumentor

        instrumentor = LangChainInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        on, off = (lambda: instrumentor.instrument(tracer_provider=provider)), instrumentor.uninstrument
    elif variant == "openllmetry":
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor

        from langchain_core.callbacks import BaseCallbackManager

        LangchainInstrumentor().instrument(tracer_provider=provider)
        # its uninstrument() leaves the patch in place (it passes unwrap() a module path and a
        # dotted attribute, which unwrap does not resolve), so switch its one LangChain patch
        # (BaseCallbackManager.__init__, adding its handler) by hand
        patched = vars(BaseCallbackManager)["__init__"]
        on = lambda: setattr(BaseCallbackManager, "__init__", patched)  # noqa: E731
        off = lambda: setattr(BaseCallbackManager, "__init__", patched.__wrapped__)  # noqa: E731
    elif variant == STACKED:
        import memobs_otel as memobs
        from openinference.instrumentation.langchain import LangChainInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=provider)
        memobs.configure(db_path=None, tracer_provider=provider)
        if not memobs.instrument("langchain"):
            raise RuntimeError("memobs langchain plugin not available")
        on, off = (lambda: memobs.instrument("langchain")), (lambda: memobs.uninstrument("langchain"))
    elif variant not in ("bare", "hand"):
        raise ValueError(variant)

    retriever = make_retriever(n_docs, k)
    if variant == "hand":
        on, off = _install_hand(retriever, provider, exporter)
    return retriever, exporter, on, off


def make_retriever(n_docs: int, k: int):
    """The benchmark's retriever: ``n_docs`` memories in an ``InMemoryVectorStore``, top ``k``."""
    from langchain_core.documents import Document
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    from .texts import memory_texts

    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=64))
    texts = memory_texts(n_docs, seed=5)
    store.add_documents([Document(page_content=t, metadata={"n": i}, id=f"doc-{i}") for i, t in enumerate(texts)])
    return store.as_retriever(search_kwargs={"k": k})


def _span_shape(span) -> tuple:
    return (span.name, span.kind, dict(span.attributes), [(e.name, dict(e.attributes)) for e in span.events])


def memobs_reference_span(retriever):
    """The span memobs records for one ``retriever.invoke(QUERY)``, recorded on a private provider."""
    import memobs_otel as memobs

    from .tracing import record_one

    def invoke_instrumented():
        if not memobs.instrument("langchain"):
            raise RuntimeError("memobs langchain plugin not available")
        try:
            retriever.invoke(QUERY)
        finally:
            memobs.uninstrument("langchain")

    return record_one(invoke_instrumented)


def _install_hand(retriever, provider, exporter):
    """Patch ``BaseRetriever.invoke`` with memobs's span written by hand, all attributes precomputed.

    Returns ``(on, off)``: put the patch in place, take it out.
    """
    from langchain_core.retrievers import BaseRetriever
    from opentelemetry import context, trace

    from memobs_otel import semconv as sc

    reference = memobs_reference_span(retriever)
    attributes = dict(reference.attributes)
    keys = list(attributes)
    first_set = keys.index(sc.GEN_AI_MEMORY_RECORD_COUNT)  # the ones before it are given at start
    start_attrs = {key: attributes[key] for key in keys[:first_set]}
    rest = {key: attributes[key] for key in keys[first_set:]}
    events = [(event.name, dict(event.attributes)) for event in reference.events]
    name, kind = reference.name, reference.kind
    tracer = provider.get_tracer("bench")
    original = BaseRetriever.invoke

    def invoke(self, input, config=None, **kwargs):
        span = tracer.start_span(name, kind=kind, attributes=start_attrs)
        token = context.attach(trace.set_span_in_context(span))
        try:
            result = original(self, input, config, **kwargs)
            span.set_attributes(rest)
            for event_name, event_attrs in events:
                span.add_event(event_name, event_attrs)
            return result
        finally:
            context.detach(token)
            span.end()

    BaseRetriever.invoke = invoke
    retriever.invoke(QUERY)
    if _span_shape(exporter.last) != _span_shape(reference):
        raise RuntimeError("the hand-written span differs from memobs's")
    _reference.append(reference)

    def on():
        BaseRetriever.invoke = invoke

    def off():
        BaseRetriever.invoke = original

    return on, off


_reference: list = []  # the hand worker's reference span, for the "floor" command


def sdk_floor(retriever_span, rounds: int, calls: int) -> dict[str, list[float]]:
    """Per call: an empty span; the same span with memobs's 10 events; with its attributes too."""
    from opentelemetry.trace import SpanKind

    from .common import interleaved, per_call
    from .tracing import make_provider

    tracer = make_provider().get_tracer("bench")
    attributes = dict(retriever_span.attributes)
    events = [(event.name, dict(event.attributes)) for event in retriever_span.events]
    name = retriever_span.name

    def empty():
        tracer.start_span(name, kind=SpanKind.INTERNAL).end()

    def with_events():
        span = tracer.start_span(name, kind=SpanKind.INTERNAL)
        for event_name, event_attrs in events:
            span.add_event(event_name, event_attrs)
        span.end()

    def whole():
        span = tracer.start_span(name, kind=SpanKind.INTERNAL)
        span.set_attributes(attributes)
        for event_name, event_attrs in events:
            span.add_event(event_name, event_attrs)
        span.end()

    return interleaved({
        "empty": lambda: per_call(empty, calls),
        "events": lambda: per_call(with_events, calls),
        "whole": lambda: per_call(whole, calls),
    }, rounds)


def worker(variant: str, n_docs: int, k: int) -> int:
    try:
        retriever, exporter, on, off = _setup(variant, n_docs, k)
    except Exception as exc:  # noqa: BLE001 - reported to the driver, not raised
        print(f"unavailable {type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
        return 0
    for _ in range(20):
        docs = retriever.invoke(QUERY)
    before = exporter.spans
    retriever.invoke(QUERY)
    per_call = exporter.spans - before
    off()
    before = exporter.spans
    retriever.invoke(QUERY)
    leaked = exporter.spans - before  # spans recorded with the instrumentation off: must be 0
    on()
    print(f"ready {per_call} {len(docs)} {leaked}", flush=True)

    def batch(calls: int, instrumented: bool) -> float:
        (on if instrumented else off)()
        retriever.invoke(QUERY)  # untimed: the first call after switching
        start = time.perf_counter()
        for _ in range(calls):
            retriever.invoke(QUERY)
        return (time.perf_counter() - start) / calls
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        if command[0] == "floor":  # hand worker only: "floor calls rounds"
            figures = sdk_floor(_reference[0], int(command[2]), int(command[1]))
            empty, events, whole = (figures[key] for key in ("empty", "events", "whole"))
            # the span alone; what the events add; what the attributes add (paired, per round)
            print(f"{median(empty)!r} {paired_difference(events, empty)!r} {paired_difference(whole, events)!r}",
                  flush=True)
            continue
        if command[0] == "pair":  # "pair calls flip": instrumented and not, in this process
            calls, flip = int(command[1]), command[2] == "1"
            if flip:
                base = batch(calls, False)
                run = batch(calls, True)
            else:
                run = batch(calls, True)
                base = batch(calls, False)
            print(f"{run!r} {base!r}", flush=True)
            continue
        print(f"{batch(int(command[1]), True)!r}", flush=True)
    return 0


# --- the driver ----------------------------------------------------------------

def _python() -> str:
    return str(BENCH_PYTHON) if BENCH_PYTHON.exists() else sys.executable


def run(quick: bool = False) -> list[Row]:
    calls, rounds, n_docs, k = (3, 2, 30, 10) if quick else (20, 33, 300, 10)  # short batches, many rounds: finer pairing
    python = _python()
    env = dict(os.environ, PYTHONPATH=str(ROOT), MEMOBS_ENABLED="true", OTEL_SDK_DISABLED="false")
    procs: dict[str, subprocess.Popen] = {}
    info: dict[str, str] = {}
    for variant in WORKERS:
        procs[variant] = subprocess.Popen(
            [python, "-m", "benchmarks.bench_peers", "--worker", variant, str(n_docs), str(k)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1)
    ready = {}
    try:
        for variant, proc in procs.items():
            line = proc.stdout.readline().strip()
            if line.startswith("ready"):
                _, spans, docs, leaked = line.split()
                ready[variant] = proc
                info[variant] = f"{spans} span(s)/call, {docs} docs"
                if variant == STACKED and leaked == spans:  # OpenInference's span, which memobs records onto
                    info[variant] += f", {leaked} with memobs off (memobs adds no span)"
                elif leaked != "0":
                    info[variant] += f", {leaked} span(s) with it off (NOT switched off)"
            else:
                info[variant] = line or "worker died"
        results: dict[str, list[float]] = {v: [] for v in ready}
        bases: dict[str, list[float]] = {v: [] for v in ready}
        names = list(ready)
        for r in range(rounds):
            for variant in round_order(names, r):
                proc = ready[variant]
                proc.stdin.write(f"pair {calls} {(r // 2) % 2}\n")
                run_s, base_s = proc.stdout.readline().split()
                results[variant].append(float(run_s))
                bases[variant].append(float(base_s))
        floor = None
        if "hand" in ready:
            ready["hand"].stdin.write(f"floor {calls * 10} {rounds}\n")
            floor = [float(x) for x in ready["hand"].stdout.readline().split()]
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
                    f"{n_docs} docs, InMemoryVectorStore + DeterministicFakeEmbedding; {where}; overheads below: "
                    f"instrumented minus uninstrumented batches in the variant's own process "
                    f"(bare process: {us(paired_difference(results['bare'], bases['bare']))}, i.e. noise)"))
    overheads = {v: paired_difference(results[v], bases[v]) for v in results if v != "bare"}
    across = {v: paired_difference(results[v], bare) for v in results if v != "bare"}
    peers = [overheads[v] for v in PEERS if v in overheads]
    for variant in VARIANTS[1:]:
        if variant not in overheads:
            rows.append(Row("8", f"  overhead under {variant}", "not run", info.get(variant, "")))
            continue
        target, ok = "", None
        if variant == "memobs" and peers:
            target, ok = "< both peers", all(overheads["memobs"] < p for p in peers)
        low, high = quartiles([x - y for x, y in zip(results[variant], bases[variant])])
        detail = (f"rounds' middle half {us(low)} to {us(high)}; "
                  f"{us(median(results[variant]))} per call, {us(median(bases[variant]))} uninstrumented; "
                  f"{info[variant]}; against the bare process instead: {us(across[variant])}")
        if variant == "memobs":
            detail += _floor_detail(overheads, floor, info)
        rows.append(Row("8", f"  overhead under {variant}", us(overheads[variant]), detail, target, ok))
    own = {v: [x - y for x, y in zip(results[v], bases[v])] for v in overheads}
    return rows + peer_differences(own) + stacked_rows(overheads, own, info)


def stacked_rows(overheads: dict[str, float], own: dict[str, list], info: dict[str, str]) -> list[Row]:
    """Rows "memobs on top of openinference": what memobs adds there, and against memobs alone by round.

    The stacked worker exports the same number of spans with memobs on and
    off (memobs adds no span beside OpenInference: it records onto OpenInference's).
    """
    name = "  memobs on top of openinference (its overhead there)"
    if STACKED not in overheads or "memobs" not in overheads:
        return [Row("8", name, "not run", info.get(STACKED, "")),
                Row("8", "  memobs on openinference - memobs alone, paired by round", "not run", "")]
    low, high = quartiles(own[STACKED])
    rows = [Row("8", name, us(overheads[STACKED]),
                f"rounds' middle half {us(low)} to {us(high)}; memobs alone {us(overheads['memobs'])}; "
                f"{info[STACKED]}", "<= memobs alone", overheads[STACKED] <= overheads["memobs"])]
    differences = [s - m for s, m in zip(own[STACKED], own["memobs"])]
    middle, detail = compare(differences, "memobs on openinference")
    rows.append(Row("8", "  memobs on openinference - memobs alone, paired by round",
                    f"{'+' if middle > 0 else ''}{us(middle)}", detail))
    return rows


def peer_differences(overheads: dict[str, list], prefix: str = "", scale: float = 1.0) -> list[Row]:
    """Rows "memobs - peer, paired by round": the median difference and its 95 % interval.

    ``overheads``: each variant's overhead in every round (the same rounds
    for all, in order), in seconds times ``scale``. The medians above say
    which is lower in this run; the interval says whether the run's rounds
    can tell them apart at all.
    """
    rows = []
    for peer in PEERS:
        name = f"  {prefix}memobs - {peer}, paired by round"
        if "memobs" not in overheads or peer not in overheads:
            rows.append(Row("8", name, "not run", f"{peer} not measured"))
            continue
        differences = [(m - p) / scale for m, p in zip(overheads["memobs"], overheads[peer])]
        middle, detail = compare(differences, "memobs")
        rows.append(Row("8", name, f"{'+' if middle > 0 else ''}{us(middle)}", detail))
    return rows


def _floor_detail(overheads: dict[str, float], floor: list[float] | None, info: dict[str, str]) -> str:
    """What of memobs's overhead is the OTel SDK's (its span written by hand) and what is memobs's own."""
    if "hand" not in overheads:
        return f"; SDK floor not measured ({info.get('hand', 'no hand worker')})"
    text = (f"; the same span by hand (SDK floor) {us(overheads['hand'])}, "
            f"so memobs's own work {us(overheads['memobs'] - overheads['hand'])}")
    if floor:
        span, events, attributes = floor
        text += (f"; SDK alone: span {us(span)}, + 10 events {us(events)} "
                 f"({us(events / 10)} each), + its attributes {us(attributes)}")
    return text


if __name__ == "__main__" and len(sys.argv) >= 2 and sys.argv[1] == "--worker":
    sys.exit(worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
