"""memobs.instrument / uninstrument on dotted-path targets; plugin loading."""

from __future__ import annotations

import asyncio
import sys
import types

import pytest
from helpers import events, finished

import memobs_otel as memobs
from memobs_otel import instrumentation, plugins


@pytest.fixture
def fake_module():
    """A real importable module with a class to patch."""
    mod = types.ModuleType("memobs_test_target")

    class Index:
        def query(self, text, k=2):
            return [{"id": f"{text}-{i}", "content": f"result {i}"} for i in range(k)]

        async def aquery(self, text):
            return [{"id": "async", "content": "async result"}]

        @staticmethod
        def lookup(text):
            return [text]

    def find(text):
        return [{"id": "fn", "content": text}]

    mod.Index, mod.find = Index, find
    sys.modules[mod.__name__] = mod
    yield mod
    memobs.uninstrument()
    del sys.modules[mod.__name__]


def test_instrument_uninstrument_instrument_again(spans, fake_module):
    Index = fake_module.Index
    original = Index.__dict__["query"]
    target = "memobs_test_target:Index.query"

    assert memobs.instrument(target, entity_type="doc", store="idx") == [target]
    assert memobs.instrument(target, entity_type="doc", store="idx") == [target]  # idempotent
    assert Index().query("q") == [{"id": "q-0", "content": "result 0"}, {"id": "q-1", "content": "result 1"}]
    assert [e["memobs.entity.id"] for e in events(spans)] == ["q-0", "q-1"]  # wrapped once, not twice
    assert finished(spans)[0].name == "search_memory idx"

    memobs.uninstrument(target)
    assert Index.__dict__["query"] is original
    spans.clear()
    Index().query("q")
    assert finished(spans) == []

    memobs.instrument(target, entity_type="doc", store="idx")
    Index().query("z", k=1)
    assert [e["memobs.entity.id"] for e in events(spans)] == ["z-0"]
    memobs.uninstrument(target)
    assert Index.__dict__["query"] is original


def test_async_staticmethod_and_function_targets(spans, fake_module):
    static = fake_module.Index.__dict__["lookup"]
    memobs.instrument("memobs_test_target:Index.aquery", entity_type="doc")
    memobs.instrument("memobs_test_target:Index.lookup", entity_type="doc")
    memobs.instrument("memobs_test_target:find", entity_type="doc")
    assert asyncio.run(fake_module.Index().aquery("x")) == [{"id": "async", "content": "async result"}]
    assert fake_module.Index.lookup("y") == ["y"]
    assert fake_module.find("z") == [{"id": "fn", "content": "z"}]
    assert len(finished(spans)) == 3
    memobs.uninstrument()
    assert fake_module.Index.__dict__["lookup"] is static
    assert isinstance(fake_module.Index.__dict__["lookup"], staticmethod)


def test_bad_targets_are_clear_errors(fake_module):
    with pytest.raises(AttributeError):
        memobs.instrument("memobs_test_target:Index.nope")
    with pytest.raises(ModuleNotFoundError):
        memobs.instrument("no_such_module_xyz:thing")
    with pytest.raises(ValueError, match="package.module:Class.method"):
        memobs.instrument("memobs_test_target:")


def test_unknown_framework_is_harmless_noop(caplog):
    assert memobs.instrument("not_a_framework") == []
    assert "no framework integration named 'not_a_framework'" in caplog.text


class MissingFramework(instrumentation.Instrumentor):
    name = "missingfw"
    modules = ("surely_not_installed_pkg",)

    def _instrument(self, **options):
        raise AssertionError("must not be called when the package is missing")


class MissingPlugin:
    @memobs.hookimpl
    def memobs_register_instrumentations(self, register):
        register(MissingFramework())


def test_framework_not_installed_is_noop(monkeypatch):
    plugin = MissingPlugin()
    plugins.pm.register(plugin)
    monkeypatch.setattr(instrumentation, "_frameworks_collected", False)
    try:
        assert memobs.instrument("missingfw") == []
        assert "missingfw" not in memobs.instrument()
    finally:
        plugins.pm.unregister(plugin)
        instrumentation._registry.pop("missingfw", None)


def test_plugin_that_fails_to_load_is_reported_and_skipped(monkeypatch):
    from importlib.metadata import EntryPoint

    good = types.ModuleType("memobs_good_plugin")
    sys.modules["memobs_good_plugin"] = good
    eps = [EntryPoint("broken", "memobs_broken_plugin_xyz", "memobs_otel"),
           EntryPoint("good", "memobs_good_plugin", "memobs_otel"),
           EntryPoint("skipped", "memobs_good_plugin", "memobs_otel")]
    monkeypatch.setattr(plugins, "entry_points", lambda group: eps)
    monkeypatch.setattr(plugins, "_loaded", False)
    monkeypatch.setenv("MEMOBS_PLUGINS", "broken,good")
    try:
        plugins.load_plugins()
        assert plugins.pm.has_plugin("good")
        assert not plugins.pm.has_plugin("skipped")
        assert plugins.plugin_errors["broken"].startswith("ModuleNotFoundError")
    finally:
        for name in ("good", "broken"):
            if plugins.pm.has_plugin(name):
                plugins.pm.unregister(name=name)
        plugins.plugin_errors.pop("broken", None)
        del sys.modules["memobs_good_plugin"]
