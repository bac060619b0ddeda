"""Section 8 in one process: every variant timed, and its instructions counted per LangChain call.

The wall-clock peer figures (``bench_peers``) move by ±30 % from run to run
on a shared 2-core machine, more than the differences being compared. This
section counts instructions instead, with valgrind's callgrind, which gives
the same count for the same code and inputs whatever else the machine does:

- one process holds the retriever of ``bench_peers`` (``InMemoryVectorStore``,
  300 documents, k=10) and all three instrumentations, installed once and
  switched on one at a time (memobs by ``instrument``/``uninstrument``,
  OpenInference by its instrumentor, OpenLLMetry by swapping its one
  LangChain patch, as ``bench_peers`` does), so every variant runs on the
  same heap, the same LangChain objects and the same SDK provider;
- for each variant the process makes ``calls`` warm calls between two
  counter dumps (``callgrind_control --dump``); the figure is the count per
  call minus the bare call's.

Instructions are not time (a cache miss costs no instruction, a C call
many), so the wall-clock rows stay the figure of record; this one says
which variant does more work, reproducibly. Needs ``valgrind``; the peers
run from their venv (``benchmarks/setup_peers.sh``), without it bare and
memobs run from the current venv and the peer rows say so.

The same one-process setup is also timed, without valgrind (the rows
before the counted ones): interleaved rounds of ``calls`` calls per variant,
switched on in turn, the first call after each switch untimed (memobs's
re-patches the vector store's score methods: ~0.3 ms once, ~15 µs per call
over a round of 20 if it were timed); the figure is the median over the
rounds of each variant's time per call minus the bare call's in the same
round, and memobs minus each peer per round with its 95 % interval
(``bench_peers.peer_differences``). It takes
the per-process noise out of the wall-clock comparison (same heap, same
objects, same process state for every variant) and so shows what the
clock says when only the instrumentation differs; the spec's figure of
record stays the per-process one in ``bench_peers``.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

from .bench_peers import PEERS, QUERY, VARIANTS, peer_differences
from .common import Row, median, quartiles, round_order


# --- the workers (one under callgrind, one timed) --------------------------------

def _switches(provider) -> dict:
    """(on, off) per variant whose package is installed, all in this process."""
    import memobs_otel as memobs

    memobs.configure(db_path=None, tracer_provider=provider)
    nothing = lambda: None  # noqa: E731
    switches = {
        "bare": (nothing, nothing),
        "memobs": (lambda: memobs.instrument("langchain"), lambda: memobs.uninstrument("langchain")),
    }
    try:
        from openinference.instrumentation.langchain import LangChainInstrumentor
    except ImportError:
        pass
    else:
        openinference = LangChainInstrumentor()
        switches["openinference"] = (lambda: openinference.instrument(tracer_provider=provider),
                                     openinference.uninstrument)
    try:
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor
    except ImportError:
        pass
    else:
        from langchain_core.callbacks import BaseCallbackManager

        plain_init = vars(BaseCallbackManager)["__init__"]
        LangchainInstrumentor().instrument(tracer_provider=provider)
        patched_init = vars(BaseCallbackManager)["__init__"]
        setattr(BaseCallbackManager, "__init__", plain_init)  # see bench_peers: its uninstrument() leaves it
        switches["openllmetry"] = (lambda: setattr(BaseCallbackManager, "__init__", patched_init),
                                   lambda: setattr(BaseCallbackManager, "__init__", plain_init))
    return switches


def _setup(n_docs: int, k: int):
    """The retriever and every variant's switches, each path warmed once."""
    from opentelemetry import trace

    from .bench_peers import make_retriever
    from .tracing import make_provider

    provider = make_provider()
    trace.set_tracer_provider(provider)
    switches = _switches(provider)
    retriever = make_retriever(n_docs, k)
    for on, off in switches.values():
        on()
        for _ in range(20):
            retriever.invoke(QUERY)
        off()
    return retriever, switches


def worker(calls: int, n_docs: int, k: int) -> int:
    retriever, switches = _setup(n_docs, k)

    def mark(label: str) -> None:
        print(label, flush=True)
        sys.stdin.readline()  # the driver dumps the counters, then answers

    for variant in (v for v in VARIANTS if v in switches):
        on, off = switches[variant]
        on()
        retriever.invoke(QUERY)
        mark(f"before-{variant}")
        for _ in range(calls):
            retriever.invoke(QUERY)
        mark(f"after-{variant}")
        off()
    return 0


def timed_worker(rounds: int, calls: int, n_docs: int, k: int) -> int:
    """Print ``{variant: [µs per call in each round]}`` as one JSON line."""
    import time

    retriever, switches = _setup(n_docs, k)
    names = [v for v in VARIANTS if v in switches]
    times: dict[str, list[float]] = {v: [] for v in names}
    clock = time.perf_counter
    for r in range(rounds):
        for variant in round_order(names, r):
            on, off = switches[variant]
            on()
            retriever.invoke(QUERY)  # untimed, as in bench_peers: the first call after switching
            start = clock()
            for _ in range(calls):
                retriever.invoke(QUERY)
            times[variant].append((clock() - start) / calls * 1e6)
            off()
    print(json.dumps(times), flush=True)
    return 0


# --- the driver ------------------------------------------------------------------

def _total(path: str) -> int:
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise ValueError(f"{path}: no totals line")


def count(calls: int, n_docs: int, k: int, python: str) -> dict[str, float]:
    """Instructions per call of each variant (not yet minus bare)."""
    from .bench_peers import ROOT

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             python, "-m", "benchmarks.bench_instructions", "--worker", str(calls), str(n_docs), str(k)],
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), MEMOBS_ENABLED="true", OTEL_SDK_DISABLED="false",
                               PYTHONHASHSEED="0"),  # str hashes fixed: the same dict layouts, the same count
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        labels = []
        try:
            for line in proc.stdout:
                label = line.strip()
                subprocess.run(["callgrind_control", "--dump=" + label, str(proc.pid)],
                               capture_output=True, check=False, timeout=120)
                labels.append(label)
                proc.stdin.write("\n")
                proc.stdin.flush()
        finally:
            proc.stdin.close()
            proc.wait(timeout=600)
        # one file per dump, numbered in order; each holds the counts since the previous dump
        dumps = sorted((p for p in glob.glob(out + ".*") if p.rsplit(".", 1)[1].isdigit()),
                       key=lambda p: int(p.rsplit(".", 1)[1]))
        if len(dumps) < len(labels):
            raise RuntimeError(f"{len(dumps)} callgrind dumps for {len(labels)} marks")
        totals = dict(zip(labels, (_total(p) for p in dumps)))
    return {v: totals[f"after-{v}"] / calls for v in VARIANTS if f"after-{v}" in totals}


def timed(rounds: int, calls: int, n_docs: int, k: int, python: str) -> dict[str, list[float]]:
    from .bench_peers import ROOT

    done = subprocess.run(
        [python, "-m", "benchmarks.bench_instructions", "--timed-worker", str(rounds), str(calls), str(n_docs), str(k)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), MEMOBS_ENABLED="true", OTEL_SDK_DISABLED="false"),
        capture_output=True, text=True, timeout=900, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed_rows(quick: bool = False) -> list[Row]:
    from .bench_peers import BENCH_PYTHON, _python

    rounds, calls, n_docs, k = (2, 2, 30, 10) if quick else (60, 20, 300, 10)
    python = _python()
    where = "bench venv" if python == str(BENCH_PYTHON) else "current venv: no peers (run benchmarks/setup_peers.sh)"
    title = f"LangChain k={k}, one process, wall clock: bare invoke"
    try:
        times = timed(rounds, calls, n_docs, k, python)
    except Exception as exc:  # noqa: BLE001 - a figure missing, not a crash
        return [Row("8", title, "not run", f"{type(exc).__name__}: {exc}")]
    bare = times["bare"]
    rows = [Row("8", title, f"{median(bare):,.1f} µs",
                f"all variants in one process, switched on in turn; {rounds} interleaved rounds of {calls} calls;"
                f" {n_docs} docs; {where}; no target (the spec's figure is per process, above)")]
    over = {v: [t - b for t, b in zip(times[v], bare)] for v in VARIANTS[1:] if v in times}
    for variant in VARIANTS[1:]:
        if variant not in over:
            rows.append(Row("8", f"  one-process overhead under {variant}", "not run", f"{variant} not installed"))
            continue
        low, high = quartiles(over[variant])
        detail = f"rounds' middle half {low:,.1f} µs to {high:,.1f} µs"
        if variant == "memobs" and "openllmetry" in over and median(over["openllmetry"]) > 0:
            detail += f"; memobs/openllmetry {median(over['memobs']) / median(over['openllmetry']):.2f}"
        rows.append(Row("8", f"  one-process overhead under {variant}", f"{median(over[variant]):,.1f} µs", detail))
    return rows + peer_differences(over, "one-process ", scale=1e6)  # µs here, seconds there


def run(quick: bool = False) -> list[Row]:
    return timed_rows(quick) + counted_rows(quick)


def counted_rows(quick: bool = False) -> list[Row]:
    from .bench_peers import BENCH_PYTHON, _python

    calls, n_docs, k = (3, 30, 10) if quick else (100, 300, 10)
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        return [Row("8", "LangChain k=10, instructions per call (callgrind)", "not run", "needs valgrind")]
    python = _python()
    where = "bench venv" if python == str(BENCH_PYTHON) else "current venv: no peers (run benchmarks/setup_peers.sh)"
    try:
        per_call = count(calls, n_docs, k, python)
    except Exception as exc:  # noqa: BLE001 - a figure missing, not a crash
        return [Row("8", "LangChain k=10, instructions per call (callgrind)", "not run", f"{type(exc).__name__}: {exc}")]
    bare = per_call["bare"]
    over = {v: per_call[v] - bare for v in VARIANTS[1:] if v in per_call}
    rows = [Row("8", f"LangChain k={k}, instructions per call: bare (callgrind)", f"{bare / 1e6:,.2f} M",
                f"{calls} calls per variant, all variants in one process under callgrind; {n_docs} docs; {where}")]
    for variant in VARIANTS[1:]:
        if variant not in over:
            rows.append(Row("8", f"  instructions over bare under {variant}", "not run", f"{variant} not installed"))
            continue
        extra = over[variant]
        target, ok = "", None
        if variant == "memobs":
            peers = [over[p] for p in PEERS if p in over]
            target, ok = "< both peers", all(extra < p for p in peers) if peers else None
        rows.append(Row("8", f"  instructions over bare under {variant}", f"{extra / 1e3:,.0f} k", "",
                        target, ok))
    return rows


if __name__ == "__main__" and len(sys.argv) >= 2 and sys.argv[1] == "--worker":
    sys.exit(worker(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
if __name__ == "__main__" and len(sys.argv) >= 2 and sys.argv[1] == "--timed-worker":
    sys.exit(timed_worker(*map(int, sys.argv[2:6])))
