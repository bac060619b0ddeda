"""Never break the host: exits raised by foreign code memobs runs, and plugin extractors
that return garbage (issue 17, item 9).

memobs catches every ``BaseException`` but ``KeyboardInterrupt`` where it runs
code the host did not ask for (a result item's property, a plugin's import or
hook); a plugin extractor's answer that is not an iterable of ``Entity`` falls
back to the built-in extractor.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from helpers import events, finished

import memobs_otel as memobs
from memobs_otel import plugins
from memobs_otel.entities import Entity

DOCS = [{"id": "f1", "content": "twelve characters"}, {"id": "f2", "content": "other fact"}]


@memobs.observe_retrieval(entity_type="fact", store="facts")
def search(q):
    return list(DOCS)


def warnings_from_memobs(caplog):
    return [r for r in caplog.records if r.name == "memobs_otel" and r.levelno == logging.WARNING]


class registered:
    def __init__(self, plugin):
        self.plugin = plugin

    def __enter__(self):
        plugins.pm.register(self.plugin)
        return self.plugin

    def __exit__(self, *exc):
        plugins.pm.unregister(self.plugin)


# --- a property raising SystemExit while memobs reads the item ------------------------

class ExitingItem:
    """A result item whose ``content`` property calls ``sys.exit``; its id is plain."""

    id = "exit-1"

    @property
    def content(self):
        sys.exit(3)

    @property
    def text(self):
        return "the text memobs falls back to"

    def __repr__(self):
        return "ExitingItem()"


def test_property_raising_system_exit_does_not_reach_the_caller(spans):
    item = ExitingItem()

    @memobs.observe_retrieval(entity_type="fact")
    def find(q):
        return [item]

    assert find("q") == [item]  # before the fix: SystemExit(3) out of find()
    (event,) = events(spans)
    assert event["memobs.entity.id"] == "exit-1"
    # the raising property counts as missing: the next content key is read
    from memobs_otel import config
    expected = config.settings.get_measurer().measure("the text memobs falls back to")
    assert event["memobs.entity.tokens"] == expected.tokens
    assert event["memobs.entity.content_hash"] == expected.content_hash


class ExitingEverywhere:
    """Every attribute read, ``str`` and ``repr`` raise SystemExit: memobs must still not raise."""

    def __getattribute__(self, name):
        if name in ("__class__", "__dict__"):
            return object.__getattribute__(self, name)
        raise SystemExit(4)

    def __str__(self):
        raise SystemExit(5)


def test_item_raising_system_exit_everywhere_is_recorded_or_skipped_never_raised(spans, caplog):
    item = ExitingEverywhere()

    @memobs.observe_retrieval(entity_type="fact")
    def find(q):
        return [item]

    result = find("q")
    assert len(result) == 1 and result[0] is item
    (span,) = finished(spans)
    assert span.status.is_ok


def test_keyboard_interrupt_is_not_swallowed(spans):
    class Interrupting:
        @property
        def content(self):
            raise KeyboardInterrupt

    @memobs.observe_retrieval(entity_type="fact")
    def find(q):
        return [Interrupting()]

    with pytest.raises(KeyboardInterrupt):
        find("q")


# --- plugin hooks: SystemExit and garbage -------------------------------------------

class ExitingExtractor:
    @memobs.hookimpl
    def memobs_extract_entities(self, result, entity_type):
        sys.exit(2)


class ExitingRedactor:
    @memobs.hookimpl
    def memobs_entity_attributes(self, entity, attributes):
        raise SystemExit(6)


def builtin_events():
    return [("fact", "f1", 0), ("fact", "f2", 1)]


def summary(spans):
    return [(e["memobs.entity.type"], e["memobs.entity.id"], e["memobs.entity.rank"]) for e in events(spans)]


@pytest.mark.parametrize("plugin", [ExitingExtractor(), ExitingRedactor()], ids=["extractor", "attributes"])
def test_hook_calling_sys_exit_is_skipped(spans, caplog, plugin):
    with registered(plugin):
        assert search("q") == DOCS
        assert search("q") == DOCS
    assert summary(spans) == builtin_events() * 2
    assert len(warnings_from_memobs(caplog)) == 1


def _raising_after_one(entity_type):
    yield Entity(entity_type, "plugin-1", "from the plugin")
    raise RuntimeError("plugin generator bug")


GARBAGE = {
    "an int": lambda result, entity_type: 42,
    "a str": lambda result, entity_type: "not entities",
    "a dict": lambda result, entity_type: {"id": "x", "content": "y"},
    "a list of dicts": lambda result, entity_type: [{"id": "x", "content": "y"}],
    "a list with None": lambda result, entity_type: [Entity(entity_type, "ok", "fine"), None],
    "a raising generator": lambda result, entity_type: _raising_after_one(entity_type),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_plugin_extractor_returning_garbage_falls_back_to_builtin(spans, caplog, name):
    make = GARBAGE[name]

    class GarbageExtractor:
        @memobs.hookimpl
        def memobs_extract_entities(self, result, entity_type):
            return make(result, entity_type)

    with registered(GarbageExtractor()):
        assert search("q") == DOCS
        assert search("q") == DOCS
    # before the fix: no injection event at all (the whole retrieval was dropped)
    assert summary(spans) == builtin_events() * 2
    (span, _) = finished(spans)
    assert span.attributes["memobs.injection.count"] == 2
    assert len(warnings_from_memobs(caplog)) == 1


def test_plugin_extractor_returning_entities_still_wins(spans):
    class GoodExtractor:
        @memobs.hookimpl
        def memobs_extract_entities(self, result, entity_type):
            return (Entity(entity_type, f"p{i}", "plugin text", rank=i) for i in range(3))

    with registered(GoodExtractor()):
        search("q")
    assert summary(spans) == [("fact", "p0", 0), ("fact", "p1", 1), ("fact", "p2", 2)]


# --- entry-point plugins, loaded as installed plugins are --------------------------------

AGENT = textwrap.dedent("""
    import json, logging
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import memobs_otel as memobs
    from memobs_otel import plugins

    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    memobs.configure(db_path=None, tracer_provider=provider)   # loads the entry-point plugins

    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        return [{"id": "f1", "content": "twelve characters"}]

    result = search("q")
    print(json.dumps({
        "result": result,
        "events": [[e.attributes["memobs.entity.id"], e.attributes["memobs.entity.rank"]]
                   for s in exporter.get_finished_spans() for e in s.events],
        "errors": plugins.plugin_errors,
        "loaded": sorted(n for n, _ in plugins.pm.list_name_plugin() if not n.startswith("memobs_otel")),
    }))
""")


def test_installed_plugins_exiting_at_import_or_returning_garbage(tmp_path):
    """Real entry points in a fresh process: one module calls ``sys.exit`` at import, one
    extractor returns garbage. The agent runs on and records with the built-in extractor."""
    site = tmp_path / "site"
    for dist, module, source in (
        ("memobs_exiting_plugin", "exiting", "import sys\nsys.exit(3)\n"),
        ("memobs_garbage_plugin", "garbage",
         "import memobs_otel as memobs\n\n"
         "@memobs.hookimpl\n"
         "def memobs_extract_entities(result, entity_type):\n"
         "    return 42\n"),
    ):
        info = site / f"{dist}-0.1.dist-info"
        info.mkdir(parents=True)
        info.joinpath("METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        info.joinpath("entry_points.txt").write_text(f"[memobs_otel]\n{module} = {dist}\n")
        site.joinpath(f"{dist}.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": str(site)}
    for name in ("MEMOBS_PLUGINS", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", AGENT], capture_output=True, text=True, env=env, timeout=300)
    # before the fix: exit code 3 from configure(), nothing printed
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["result"] == [{"id": "f1", "content": "twelve characters"}]
    assert report["events"] == [["f1", 0]]
    assert report["errors"] == {"exiting": "SystemExit: 3"}
    assert "garbage" in report["loaded"] and "exiting" not in report["loaded"]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("memobs_otel ")]
    assert warnings == [
        "memobs_otel memobs: plugin 'exiting' failed to load and is skipped (SystemExit: 3)",
        "memobs_otel memobs: a memobs_extract_entities plugin returned something that is not an iterable "
        "of Entity; the built-in extractor is used instead (TypeError); memobs keeps going and will not "
        "repeat this warning",
    ]


# --- a framework integration raising while it instruments ----------------------------------

def test_instrument_all_skips_an_integration_that_exits(caplog, monkeypatch):
    from memobs_otel import instrumentation

    class Exiting(instrumentation.Instrumentor):
        name = "exitingfw"

        def _instrument(self, **options):
            sys.exit(7)

    class Fine(instrumentation.Instrumentor):
        name = "finefw"

        def _instrument(self, **options):
            pass

    class Registrar:
        @memobs.hookimpl
        def memobs_register_instrumentations(self, register):
            register(Exiting())
            register(Fine())

    plugin = Registrar()
    plugins.pm.register(plugin)
    monkeypatch.setattr(instrumentation, "_frameworks_collected", False)
    try:
        done = memobs.instrument()  # before the fix: SystemExit(7) out of instrument()
        assert "finefw" in done and "exitingfw" not in done
        assert [r.getMessage() for r in warnings_from_memobs(caplog)] == [
            "memobs: the 'exitingfw' integration failed to instrument and is skipped (SystemExit); "
            "memobs keeps going and will not repeat this warning"]
    finally:
        plugins.pm.unregister(plugin)
        memobs.uninstrument()
        for name in ("exitingfw", "finefw"):
            instrumentation._registry.pop(name, None)
