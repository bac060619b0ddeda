"""The context budget (SPEC §6b, issue 22) end to end: real instrumentations, a real
SQLite file written by ``configure(db_path=...)``'s exporter, exact figures.

The chain is a real LCEL RAG chain (langchain-core's InMemoryVectorStore with
DeterministicFakeEmbedding, a fake chat model that reports usage like a provider
does: ``AIMessage.usage_metadata``) run inside ``memobs.context`` with no span
of the test's around it, so the LLM span and the retriever span are in traces
of their own: only ``memobs.turn.id`` (stamped on every span started in the
block by configure()'s TurnSpanProcessor) ties them to one turn.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from langchain_helpers import ENC, PEERS, peer_instrumented
from langchain_helpers import TEXTS as _TEXTS
from langchain_helpers import make_chain as _make_chain
from langchain_helpers import make_store as _make_store
from langchain_helpers import top_ids as _top_ids

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

import memobs_otel as memobs
from memobs_otel import trace_buffer
from memobs_otel.cli import main as cli_main
from memobs_otel.store import budget as budget_module

TEXTS = {i: _TEXTS[i] for i in ("d0", "d1", "d2", "d3")}
K = 2
PROMPT_TOKENS = 412  # what the fake provider reports as the prompt's size


def tokens(doc_id):
    return len(ENC.encode_ordinary(TEXTS[doc_id]))


@pytest.fixture(autouse=True)
def _fresh_buffer():
    trace_buffer.clear()
    yield
    trace_buffer.clear()


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "budget.db")


@pytest.fixture
def handle(db):
    handle = memobs.configure(db_path=db)
    yield handle
    handle.shutdown()


@pytest.fixture(params=sorted(PEERS))
def peer(request, handle):
    """The peer LLM instrumentation on configure()'s provider, and memobs instrumented."""
    with peer_instrumented(request.param, handle.tracer_provider) as name:
        yield name


def make_store():
    return _make_store(TEXTS)


def top_ids(store, query):
    return _top_ids(store, query, K)


def answer_message(text, input_tokens=PROMPT_TOKENS):
    return AIMessage(content=text, usage_metadata={
        "input_tokens": input_tokens, "output_tokens": 9, "total_tokens": input_tokens + 9})


def make_chain(store, messages):
    return _make_chain(store, GenericFakeChatModel(messages=iter(messages)), K)


def read_budget(db, **kwargs):
    with memobs.open_store(db) as store:
        return store.context_budget(**kwargs)


def test_langchain_chain_with_an_llm_instrumentation(peer, handle, db):
    store = make_store()
    first, second = top_ids(store, "refund policy")
    with memobs.context(user_id="u-1", session_id="s-1"):
        text = make_chain(store, [answer_message(TEXTS[first])]).invoke("refund policy")
        assert memobs.record_answer(text) == [("document", first)]
    handle.force_flush()
    budget = read_budget(db)
    memory = tokens(first) + tokens(second)
    assert (budget.turns, budget.prompt_tokens, budget.memory_tokens) == (1, PROMPT_TOKENS, memory)
    assert (budget.cited_memory_tokens, budget.uncited_memory_tokens) == (tokens(first), tokens(second))
    assert budget.memory_share == memory / PROMPT_TOKENS
    assert budget.turns_over_prompt == 0
    assert [t.to_dict() for t in budget.by_entity_type] == [{
        "entity_type": "document", "turns": 1, "memory_tokens": memory, "memory_share": memory / PROMPT_TOKENS,
        "cited_memory_tokens": tokens(first), "uncited_memory_tokens": tokens(second)}]
    (turn,) = budget.top_turns
    assert (turn.user_id, turn.prompt_tokens, turn.memory_tokens, turn.cited_memory_tokens) == (
        "u-1", PROMPT_TOKENS, memory, tokens(first))
    assert len(turn.turn_id) == 16
    # one LLM call, recorded by the peer, in the block's turn (no span of the test's around the chain)
    with memobs.open_store(db) as opened:
        calls = opened.connection.execute("SELECT turn_id, input_tokens, source FROM llm_calls").fetchall()
        traces = opened.connection.execute(
            "SELECT COUNT(DISTINCT trace_id) FROM spans WHERE turn_id = ?", (turn.turn_id,)).fetchone()[0]
    assert calls == [(turn.turn_id, PROMPT_TOKENS, "llm")]
    assert traces >= 2  # the block's spans are in several traces: the turn ties them


def test_langchain_plugin_records_the_prompt_size_without_an_llm_instrumentation(handle, db):
    """No OpenInference/OpenLLMetry: memobs's LangChain plugin reads the chat model's usage."""
    store = make_store()
    first, second = top_ids(store, "gift cards")
    assert memobs.instrument("langchain") == ["langchain"]
    try:
        with memobs.context(user_id="u-1"):
            text = make_chain(store, [answer_message(TEXTS[first], input_tokens=333)]).invoke("gift cards")
            assert memobs.record_answer(text) == [("document", first)]
    finally:
        memobs.uninstrument("langchain")
    handle.force_flush()
    budget = read_budget(db)
    assert (budget.turns, budget.prompt_tokens, budget.memory_tokens, budget.cited_memory_tokens) == (
        1, 333, tokens(first) + tokens(second), tokens(first))
    with memobs.open_store(db) as opened:
        assert opened.connection.execute("SELECT input_tokens, source FROM llm_calls").fetchall() == [
            (333, "memobs")]


def test_langchain_plugin_records_the_prompt_size_of_an_async_call(handle, db):
    import asyncio

    store = make_store()
    first, second = top_ids(store, "refund policy")
    assert memobs.instrument("langchain") == ["langchain"]

    async def turn():
        async with memobs.context(user_id="u-1"):
            await make_chain(store, [answer_message(TEXTS[first], input_tokens=120)]).ainvoke("refund policy")

    try:
        asyncio.run(turn())
    finally:
        memobs.uninstrument("langchain")
    handle.force_flush()
    budget = read_budget(db)
    assert (budget.turns, budget.prompt_tokens, budget.memory_tokens, budget.cited_memory_tokens) == (
        1, 120, tokens(first) + tokens(second), 0)


def test_record_prompt_alone(handle, db):
    """No LLM instrumentation: the application records its prompt (text counted, never exported)."""
    prompt = "You are a helpful agent. " * 20 + "Question: where is my refund?"

    @memobs.observe_retrieval(entity_type="memory", store="notes")
    def search(query):
        return [{"id": "m1", "content": TEXTS["d0"]}, {"id": "m2", "content": TEXTS["d1"]}]

    with memobs.context(user_id="u-2"):
        search("refund")
        memobs.record_prompt(text=prompt, model="fake-model")
        memobs.cite("memory", "m2")
    with memobs.context(user_id="u-3"):  # a second turn: an explicit count
        search("shipping")
        memobs.record_prompt(input_tokens=1000)
    handle.force_flush()
    prompt_tokens = len(ENC.encode_ordinary(prompt))
    budget = read_budget(db)
    memory = tokens("d0") + tokens("d1")
    assert (budget.turns, budget.prompt_tokens, budget.memory_tokens) == (2, prompt_tokens + 1000, 2 * memory)
    assert (budget.cited_memory_tokens, budget.uncited_memory_tokens) == (tokens("d1"), 2 * memory - tokens("d1"))
    only = read_budget(db, user_id="u-2")
    assert (only.turns, only.prompt_tokens, only.memory_tokens, only.cited_memory_tokens) == (
        1, prompt_tokens, memory, tokens("d1"))
    with memobs.open_store(db) as opened:
        rows = opened.connection.execute("SELECT name, attributes FROM spans WHERE name = 'memobs.prompt'").fetchall()
        assert opened.connection.execute("SELECT model, source FROM llm_calls ORDER BY pk").fetchall() == [
            ("fake-model", "memobs"), (None, "memobs")]
    assert len(rows) == 2 and all("helpful agent" not in attrs for _, attrs in rows)  # the text never leaves


def test_a_prompt_smaller_than_the_memory_is_counted_and_shown(handle, db):
    @memobs.observe_retrieval(entity_type="memory")
    def search(query):
        return [{"id": "m1", "content": TEXTS["d0"]}, {"id": "m2", "content": TEXTS["d2"]}]

    with memobs.context(user_id="u-1"):
        search("a")
        memobs.record_prompt(input_tokens=5)  # the app injected only part of what it retrieved
    with memobs.context(user_id="u-1"):
        search("b")
        memobs.record_prompt(input_tokens=500)
    with memobs.context(user_id="u-1"):
        search("c")  # no prompt size: not a counted turn
    with memobs.context(user_id="u-1"):
        memobs.record_prompt(input_tokens=70)  # no memory: not a counted turn
    handle.force_flush()
    memory = tokens("d0") + tokens("d2")
    budget = read_budget(db)
    assert (budget.turns, budget.prompt_tokens, budget.memory_tokens, budget.turns_over_prompt) == (
        2, 505, 2 * memory, 1)
    assert [(t.prompt_tokens, t.memory_share) for t in budget.top_turns] == [
        (5, memory / 5), (500, memory / 500)]  # share > 1, never capped
    result = CliRunner().invoke(cli_main, ["budget", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["turns"], data["prompt_tokens"], data["memory_tokens"], data["turns_over_prompt"]) == (
        2, 505, 2 * memory, 1)
    assert data["top_turns"][0]["memory_share"] == memory / 5
    table = CliRunner().invoke(cli_main, ["budget", "--db", db])
    assert table.exit_code == 0, table.output
    assert "1 turn had a prompt smaller than the memory injected in it" in table.output


def test_instrumented_calls_win_over_record_prompt_in_one_turn():
    """The arithmetic alone: a turn with an instrumented call ignores its memobs counts."""
    day = int(datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp() * 1e9)
    prompts = [("t1", day, 300, 999), ("t2", day + 1, None, 200), ("t3", day + 2, 50, None)]
    memory = [("t1", "doc", "u", 30, 10), ("t1", "fact", "u", 20, 0), ("t2", "doc", "u", 100, 100),
              ("t9", "doc", "u", 7, 0)]
    result = budget_module.compute(prompts, memory, 30)
    assert (result.turns, result.prompt_tokens, result.memory_tokens) == (2, 500, 150)
    assert (result.cited_memory_tokens, result.uncited_memory_tokens) == (110, 40)
    assert [(t.entity_type, t.turns, t.memory_tokens, t.cited_memory_tokens) for t in result.by_entity_type] == [
        ("doc", 2, 130, 110), ("fact", 1, 20, 0)]
    assert [t.turn_id for t in result.top_turns] == ["t2", "t1"]
    assert [d.to_dict() for d in result.by_day] == [{
        "day": "2026-03-01", "turns": 2, "prompt_tokens": 500, "memory_tokens": 150, "memory_share": 0.3,
        "uncited_memory_tokens": 40, "uncited_share": 0.08}]


def test_empty_store_says_so(handle, db):
    with memobs.context(user_id="u-1"):
        memobs.record_prompt(input_tokens=70)  # a prompt, no memory: no counted turn
    handle.shutdown()
    result = CliRunner().invoke(cli_main, ["budget", "--db", db])
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == (
        "No turn in the last 30 days has both memory injected and a prompt size recorded.")
    assert "memobs.record_prompt(text=...)" in " ".join(result.output.split())  # and how to get one
    data = json.loads(CliRunner().invoke(cli_main, ["budget", "--db", db, "--json"]).output)
    assert (data["turns"], data["memory_share"], data["top_turns"]) == (0, None, [])


def test_window_and_bad_input(handle, db):
    with memobs.context(user_id="u-1"):
        memobs.record_injection([{"id": "m1", "content": TEXTS["d3"]}], entity_type="memory")
        memobs.record_prompt(input_tokens=100)
    handle.force_flush()
    later = datetime.now(timezone.utc) + timedelta(days=3)
    assert read_budget(db, days_back=2, now=later).turns == 0
    assert read_budget(db, days_back=4, now=later).turns == 1
    for args in (["--days", "zero"], ["--days", "-1"]):
        result = CliRunner().invoke(cli_main, ["budget", "--db", db, *args])
        assert result.exit_code == 2 and "Traceback" not in result.output


def test_purge_user_takes_the_turn_rows(handle, db):
    @memobs.observe_retrieval(entity_type="memory")
    def search(query):
        return [{"id": "m1", "content": TEXTS["d0"]}]

    for user in ("u-1", "u-2"):
        with memobs.context(user_id=user):
            search("a")
            memobs.record_prompt(input_tokens=100)
    handle.shutdown()
    with memobs.open_store(db) as store:
        store.purge_user("u-2")
        assert store.context_budget().turns == 1
        conn = store.connection
        assert conn.execute("SELECT COUNT(*) FROM turn_injections WHERE user_id = 'u-2'").fetchone() == (0,)
        assert conn.execute("SELECT DISTINCT user_id FROM llm_calls").fetchall() == [("u-1",)]


def test_report_opens_with_the_budget(tmp_path):
    from memobs_otel.demo import run_agent
    from memobs_otel.report import build_report

    path = str(tmp_path / "demo.db")
    now = run_agent(path)
    data, page = build_report(path, now=now)
    assert (data.budget.turns, data.budget.memory_tokens, data.budget.uncited_memory_tokens) == (48, 33_303, 30_709)
    assert page.index('<section id="context-budget">') < page.index('<section id="headline"')
    assert ('<div class="card" data-metric="memory-share"><div class="label">Memory share of the prompt</div>'
            '<div class="value">90.9%</div>') in page
    assert '<div class="card" data-metric="uncited-share"><div class="label">Uncited memory share</div>' \
           '<div class="value">83.8%</div>' in page
    # the demo's turns all happen now: one bar, on the day's axis
    assert page.count('aria-label="Memory share of the prompt per ') == 1


def test_report_without_prompt_sizes_says_how_to_get_them(handle, db):
    from memobs_otel.report import build_report

    memobs.record_injection([{"id": "m1", "content": TEXTS["d3"]}], entity_type="memory")
    handle.shutdown()
    data, page = build_report(db)
    assert data.budget.turns == 0
    assert ("No context budget: no turn in the window has both memory injected and a prompt size."
            in page)


def test_llamaindex_plugin_records_the_prompt_size_an_llm_reports(handle, db):
    """No OpenInference/OpenLLMetry: memobs's LlamaIndex plugin reads the usage the LLM reported
    (``raw["usage"]``, as OpenAI's responses carry it) from the dispatcher's LLM end events."""
    pytest.importorskip("llama_index.core")
    from llama_index.core.base.llms.types import CompletionResponse
    from llama_index.core.llms import MockLLM
    from llama_index.core.llms.callbacks import llm_completion_callback

    class UsageLLM(MockLLM):
        @llm_completion_callback()
        def complete(self, prompt, formatted=False, **kwargs):
            return CompletionResponse(text="Refunds take fourteen days.", raw={
                "model": "fake-gpt", "usage": {"prompt_tokens": 271, "completion_tokens": 6}})

    @memobs.observe_retrieval(entity_type="memory")
    def search(query):
        return [{"id": "m1", "content": TEXTS["d0"]}]

    assert memobs.instrument("llamaindex") == ["llamaindex"]
    try:
        with memobs.context(user_id="u-1"):
            search("refund")
            UsageLLM().complete("What about refunds?")
            UsageLLM().chat([])  # MockLLM's chat goes through complete: one more call
    finally:
        memobs.uninstrument("llamaindex")
    with memobs.context(user_id="u-1"):
        UsageLLM().complete("after uninstrument")  # not recorded
    handle.force_flush()
    with memobs.open_store(db) as opened:
        assert opened.connection.execute("SELECT input_tokens, model, source FROM llm_calls").fetchall() == [
            (271, "fake-gpt", "memobs"), (271, "fake-gpt", "memobs")]
    budget = read_budget(db)
    assert (budget.turns, budget.prompt_tokens, budget.memory_tokens) == (1, 542, tokens("d0"))


def test_clickhouse_gives_the_sqlite_budget(tmp_path):
    """The same spans into a SQLite file (configure's exporter) and into embedded ClickHouse as
    the Collector's exporter writes them: the same budget, every field."""
    pytest.importorskip("clickhouse_connect")
    pytest.importorskip("chdb")
    import clickhouse_connect
    from clickhouse_exporter_rows import create_traces_table, export
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider, captured = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(captured))
    db = str(tmp_path / "budget.db")
    handle = memobs.configure(db_path=db, tracer_provider=provider)
    llm = provider.get_tracer("some-llm-instrumentation")

    @memobs.observe_retrieval(entity_type=lambda e: e.metadata["kind"], store="notes")
    def search(ids):
        return [{"id": i, "content": TEXTS[i], "metadata": {"kind": "fact" if i == "d3" else "doc"}} for i in ids]

    try:
        with memobs.context(user_id="u-1"):  # an instrumented call in a trace of its own: gen_ai
            search(["d0", "d3"])
            with llm.start_as_current_span("chat") as span:
                span.set_attribute("gen_ai.usage.input_tokens", 800)
            memobs.cite("doc", "d0")
        with memobs.context(user_id="u-2"):  # OpenInference's attribute, and a record_prompt ignored
            search(["d1"])
            with llm.start_as_current_span("ChatModel") as span:
                span.set_attribute("llm.token_count.prompt", 90)
            memobs.record_prompt(input_tokens=5000)
            memobs.cite("doc", "d1")
        with memobs.context(user_id="u-2"):  # record_prompt alone, smaller than the memory
            search(["d2", "d3"])
            memobs.record_prompt(input_tokens=3, model="m")
        with llm.start_as_current_span("request", attributes={"user.id": "u-3"}):  # no block: the trace
            search(["d1", "d2"])
            with llm.start_as_current_span("chat") as span:
                span.set_attribute("gen_ai.usage.input_tokens", 120)
            memobs.cite("doc", "d2")
    finally:
        handle.shutdown()
    client = clickhouse_connect.get_client(interface="chdb", path=str(tmp_path / "ch"))
    create_traces_table(client)
    export(client, captured.get_finished_spans())
    client.close()
    with memobs.open_store(db) as sqlite_store, \
            memobs.open_store(f"chdb://{tmp_path / 'ch'}?table=otel.otel_traces") as ch_store:
        expected = sqlite_store.context_budget()
        assert (expected.turns, expected.prompt_tokens, expected.turns_over_prompt) == (4, 800 + 90 + 3 + 120, 1)
        assert expected.cited_memory_tokens == tokens("d0") + tokens("d1") + tokens("d2")
        assert ch_store.context_budget().to_dict() == expected.to_dict()
        for user in ("u-1", "u-2", "u-3", "nobody"):
            assert ch_store.context_budget(user_id=user).to_dict() == \
                sqlite_store.context_budget(user_id=user).to_dict(), user


def test_every_span_started_in_a_block_carries_its_turn(handle):
    """configure()'s TurnSpanProcessor: any instrumentation's spans, nested blocks, threads."""
    import threading

    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    captured = InMemorySpanExporter()
    handle.tracer_provider.add_span_processor(SimpleSpanProcessor(captured))
    other = handle.tracer_provider.get_tracer("another-instrumentation")
    with other.start_as_current_span("outside"):
        pass
    with memobs.context(user_id="u-1"):
        with other.start_as_current_span("outer"):
            with memobs.context():
                other.start_span("inner").end()
            thread = threading.Thread(target=lambda: other.start_span("in a thread").end())
            thread.start()
            thread.join()
    with memobs.context(user_id="u-1"):
        other.start_span("next block").end()
    turn = {s.name: s.attributes.get("memobs.turn.id") for s in captured.get_finished_spans()}
    assert turn["outside"] is None
    assert len({turn["outer"], turn["inner"], turn["next block"]}) == 3
    assert turn["in a thread"] == turn["outer"]
    assert all(len(t) == 16 for name, t in turn.items() if name != "outside")


def test_a_citation_on_a_span_begun_before_the_block_is_in_the_block_turn(handle, db):
    """The request span around the block was started outside it: citing on it claims it for the
    block's turn, so the injection made in the block (in another trace) is cited."""
    tracer = handle.tracer_provider.get_tracer("app")

    @memobs.observe_retrieval(entity_type="memory")
    def search(query):
        return [{"id": "m1", "content": TEXTS["d0"]}, {"id": "m2", "content": TEXTS["d1"]}]

    with tracer.start_as_current_span("request"):
        with memobs.context(user_id="u-1"):
            from opentelemetry import context as otel_context

            token = otel_context.attach(otel_context.Context())  # the retrieval in a trace of its own
            try:
                search("refund")
            finally:
                otel_context.detach(token)
            memobs.record_prompt(input_tokens=200)
            memobs.cite("memory", "m1")
    handle.force_flush()
    budget = read_budget(db)
    assert (budget.turns, budget.cited_memory_tokens, budget.uncited_memory_tokens) == (
        1, tokens("d0"), tokens("d1"))


def test_a_file_missing_a_turn_table_is_refused_in_one_line(handle, db):
    import sqlite3

    with memobs.context(user_id="u-1"):
        memobs.record_prompt(input_tokens=10)
    handle.shutdown()
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE turn_injections")
    conn.commit()
    conn.close()
    result = CliRunner().invoke(cli_main, ["budget", "--db", db])
    assert result.exit_code == 2
    assert "turn_injections" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
