"""Query API on hand-built scenarios: exact stats and every review signal.

Spans are real SDK spans exported by the real ``SQLiteSpanExporter`` into a
file in ``tmp_path``; event times are set explicitly so every number below
is computed by hand. ``NOW`` is 2025-06-01, the window is 30 days
(from 2025-05-02).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from helpers import NOW, UTC, Agent, day, fingerprint, ns, pb



# --------------------------------------------------------------------------
# injection_stats
# --------------------------------------------------------------------------

@pytest.fixture
def stats_store(tmp_path):
    agent = Agent(tmp_path / "stats.db")
    # outside the window: never counted
    agent.search(day(4, 1), [pb("1")], user="u1", session="s0", cite=[("pb", "1")])
    agent.search(day(5, 10), [pb("1"), pb("2", tokens=50)], user="u1", session="s1",
                 cite=[("pb", "1")], cite_twice=True)  # twice in one trace: counted once
    agent.search(day(5, 20), [pb("1"), pb("2", tokens=50)], user="u1", session="s2")
    agent.search(day(5, 25), [pb("1"), pb("2", tokens=50)], user="u2", session="s3",
                 cite=[("pb", "1")])
    # one entity id under two types stays two entities
    agent.search(day(5, 26), [{"type": "user_playbook", "id": "7", "tokens": 10},
                              {"type": "agent_playbook", "id": "7", "tokens": 20}],
                 user="u2", session="s3")
    # cited more often than surfaced: the rate is capped at 1.0
    agent.search(day(5, 27), [pb("3", tokens=5)], user="u2", session="s4", cite=[("pb", "3")])
    agent.search(day(5, 28), [], user="u2", session="s4", cite=[("pb", "3")])
    # cited, never surfaced: no stats row
    agent.search(day(5, 28), [], user="u1", session="s1", cite=[("pb", "9")])
    return agent.store()


def test_injection_stats_all_users_exact(stats_store):
    rows = [s.to_dict() for s in stats_store.injection_stats(days_back=30, now=NOW)]
    assert rows == [
        {"entity_type": "pb", "entity_id": "1", "surfaced_count": 3, "total_prompt_tokens": 300,
         "distinct_session_count": 3, "citation_count": 2, "citation_rate": 2 / 3,
         "first_injected_at": "2025-05-10T12:00:00Z", "last_injected_at": "2025-05-25T12:00:00Z"},
        {"entity_type": "pb", "entity_id": "2", "surfaced_count": 3, "total_prompt_tokens": 150,
         "distinct_session_count": 3, "citation_count": 0, "citation_rate": 0.0,
         "first_injected_at": "2025-05-10T12:00:00Z", "last_injected_at": "2025-05-25T12:00:00Z"},
        {"entity_type": "agent_playbook", "entity_id": "7", "surfaced_count": 1,
         "total_prompt_tokens": 20, "distinct_session_count": 1, "citation_count": 0,
         "citation_rate": 0.0, "first_injected_at": "2025-05-26T12:00:00Z",
         "last_injected_at": "2025-05-26T12:00:00Z"},
        {"entity_type": "user_playbook", "entity_id": "7", "surfaced_count": 1,
         "total_prompt_tokens": 10, "distinct_session_count": 1, "citation_count": 0,
         "citation_rate": 0.0, "first_injected_at": "2025-05-26T12:00:00Z",
         "last_injected_at": "2025-05-26T12:00:00Z"},
        {"entity_type": "pb", "entity_id": "3", "surfaced_count": 1, "total_prompt_tokens": 5,
         "distinct_session_count": 1, "citation_count": 2, "citation_rate": 1.0,
         "first_injected_at": "2025-05-27T12:00:00Z", "last_injected_at": "2025-05-27T12:00:00Z"},
    ]


def test_injection_stats_one_user_exact(stats_store):
    stats = stats_store.injection_stats(days_back=30, user_id="u1", now=NOW)
    assert [(s.entity_type, s.entity_id, s.surfaced_count, s.total_prompt_tokens,
             s.distinct_session_count, s.citation_count, s.citation_rate) for s in stats] == [
        ("pb", "1", 2, 200, 2, 1, 0.5),
        ("pb", "2", 2, 100, 2, 0, 0.0),
    ]
    assert stats[0].first_injected_at == day(5, 10)
    assert stats[0].last_injected_at == day(5, 20)
    assert stats[0].last_injected_at.tzinfo is not None


def test_injection_stats_longer_window_and_type_filter(stats_store):
    stats = stats_store.injection_stats(days_back=90, entity_type="pb", user_id="u1", now=NOW)
    assert [(s.entity_id, s.surfaced_count, s.citation_count) for s in stats] == [
        ("1", 3, 2), ("2", 2, 0)]
    # naive now means UTC
    naive = stats_store.injection_stats(days_back=30, now=NOW.replace(tzinfo=None))
    assert naive == stats_store.injection_stats(days_back=30, now=NOW)


@pytest.mark.parametrize("bad", [0, -1, "7", None, True])
def test_bad_days_back_is_a_value_error(stats_store, bad):
    with pytest.raises(ValueError, match="days_back"):
        stats_store.injection_stats(days_back=bad, now=NOW)
    with pytest.raises(ValueError, match="days_back"):
        stats_store.memory_review(days_back=bad, now=NOW)


# --------------------------------------------------------------------------
# memory_review
# --------------------------------------------------------------------------

def review_by_id(store, **kwargs):
    kwargs.setdefault("now", NOW)
    return {(c.entity_type, c.entity_id): c for c in store.memory_review(**kwargs)}


def test_supersedeable_by_field_and_by_child(tmp_path):
    agent = Agent(tmp_path / "m.db")
    agent.write(day(5, 20), "pb", "old", op="update", superseded_by="new")
    agent.write(day(5, 20), "pb", "keep")  # near-miss: nothing names it
    agent.write(day(5, 21), "pb", "new")
    agent.write(day(5, 21), "pb", "parent")
    agent.write(day(5, 22), "pb", "child", parent_id="parent")
    agent.write(day(5, 21), "pb", "parent2")  # near-miss: its child is archived
    agent.write(day(5, 22), "pb", "child2", parent_id="parent2")
    agent.write(day(5, 23), "pb", "child2", op="archive")
    agent.write(day(5, 21), "other", "parent")  # same id, other type: not superseded
    agent.write(day(5, 20), "pb", "gone", superseded_by="new")
    agent.write(day(5, 21), "pb", "gone", op="archive")  # archived: never a candidate
    got = review_by_id(agent.store())
    assert set(got) == {("pb", "old"), ("pb", "parent")}
    assert got["pb", "old"].signals == ["supersedeable"]
    assert got["pb", "old"].score == 100
    assert got["pb", "old"].superseded_by == "new"
    assert got["pb", "parent"].superseded_by == "child"


def test_stale_and_its_near_misses(tmp_path):
    agent = Agent(tmp_path / "m.db")
    agent.write(day(3, 1), "doc", "stale", created_at="2025-01-01T00:00:00Z")
    agent.write(day(3, 1), "doc", "fresh", created_at="2025-01-01T00:00:00Z",
                updated_at="2025-05-20T00:00:00+02:00")
    agent.write(day(3, 1), "doc", "used", created_at="2025-01-01T00:00:00Z")
    agent.search(day(5, 30), [{"type": "doc", "id": "used"}])
    agent.write(day(3, 1), "doc", "garbage", created_at="not-a-date")
    agent.write(day(3, 1), "doc", "half", created_at="2025-01-29", updated_at="garbage")
    agent.write(day(3, 1), "doc", "untimed")  # no timestamp: first seen counts
    agent.write(day(3, 1), "doc", "epoch_ms", created_at=int(ns(day(2, 1, 0)) // 1_000_000))
    agent.write(day(3, 1), "doc", "epoch_s", created_at=float(ns(day(2, 1, 0)) // 10**9))
    got = review_by_id(agent.store())
    assert set(got) == {("doc", "stale"), ("doc", "half"), ("doc", "untimed"),
                        ("doc", "epoch_ms"), ("doc", "epoch_s")}
    stale = got["doc", "stale"]
    assert stale.signals == ["stale"]
    # 2025-01-01 -> 2025-06-01 is 151 days: 50 + 151 // 7
    assert stale.score == 50 + 151 // 7 == 71
    assert stale.last_modified_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert stale.last_injected_at is None
    assert got["doc", "half"].score == 50 + 123 // 7  # naive date = UTC midnight
    assert got["doc", "untimed"].last_modified_at == day(3, 1)
    assert got["doc", "untimed"].score == 50 + (31 + 30 + 31 - 1) // 7  # 91 days and 12 h
    assert got["doc", "epoch_ms"].score == got["doc", "epoch_s"].score == 50 + 120 // 7
    # the most a stale entity scores is 99
    agent2 = Agent(tmp_path / "old.db")
    agent2.write(day(3, 1), "doc", "ancient", created_at="2001-01-01T00:00:00Z")
    assert review_by_id(agent2.store())["doc", "ancient"].score == 99


def test_high_cost_low_cite_threshold_is_strict(tmp_path):
    agent = Agent(tmp_path / "m.db")
    for i, d in enumerate((10, 11, 12, 13)):
        agent.search(day(5, d), [pb("low"), pb("half", tokens=60)], session=f"s{i}",
                     cite=[("pb", "low")] if i == 0 else [("pb", "half")] if i < 3 else [])
    agent.search(day(5, 14), [pb("few")])
    agent.search(day(5, 15), [pb("few")])
    got = review_by_id(agent.store())
    assert set(got) == {("pb", "low")}
    low = got["pb", "low"]
    assert low.to_dict() == {
        "entity_type": "pb", "entity_id": "low", "title": "low",
        "signals": ["high_cost_low_cite"], "score": 30 + 4, "injection_count": 4,
        "citation_count": 1, "citation_rate": 0.25, "wasted_tokens": 300,
        "last_injected_at": "2025-05-13T12:00:00Z", "last_modified_at": "2025-05-10T12:00:00Z",
        "superseded_by": None, "duplicate_of": None,
        "action": "rewrite or shorten: 300 tokens wasted", "dismissed": False,
    }
    # "half" has citation rate exactly 0.5: flagged only when the bar is raised
    raised = review_by_id(agent.store(), max_cite_rate=0.51)
    assert raised["pb", "half"].citation_rate == 0.5
    assert raised["pb", "half"].wasted_tokens == 120
    # "few" has 2 injections: flagged only with min_injections=2
    assert ("pb", "few") in review_by_id(agent.store(), min_injections=2)


def test_duplicates_nearest_newer_twin(tmp_path):
    agent = Agent(tmp_path / "m.db")
    base, far = 0x0123456789ABCDEF, 0x7EDCBA9876543210
    hx = "{:016x}".format
    # distance 3: the older one is the duplicate
    agent.write(day(5, 3), "note", "a", simhash=hx(base))
    agent.write(day(5, 4), "note", "b", simhash=hx(base ^ 0b111))
    # distance 4: not duplicates
    agent.write(day(5, 3), "note", "c", simhash=hx(far))
    agent.write(day(5, 4), "note", "d", simhash=hx(far ^ 0b1111))
    # identical content: score 29
    agent.write(day(5, 3), "note", "e", content_hash="e" * 32, simhash=hx(0xFFFF0000FFFF0000))
    agent.write(day(5, 4), "note", "f", content_hash="e" * 32, simhash=hx(0xFFFF0000FFFF0000))
    # an archived twin is no twin; the archived entity is no candidate
    agent.write(day(5, 3), "note", "g", simhash=hx(0x1111222233334444))
    agent.write(day(5, 4), "note", "h", simhash=hx(0x1111222233334444))
    agent.write(day(5, 5), "note", "h", op="archive")
    # other type, same fingerprint as "a": types never mix
    agent.write(day(5, 6), "doc", "a2", simhash=hx(base))
    got = review_by_id(agent.store(), signal_filter=["duplicate"])
    assert set(got) == {("note", "a"), ("note", "e")}
    assert got["note", "a"].duplicate_of == "b"
    assert got["note", "a"].score == 20 + 3 * (3 - 3) == 20
    assert got["note", "e"].duplicate_of == "f"
    assert got["note", "e"].score == 29


def test_duplicate_picks_nearest_then_newest_and_breaks_ties(tmp_path):
    agent = Agent(tmp_path / "m.db")
    hx = "{:016x}".format
    base = 0x0F0F0F0F0F0F0F0F
    agent.write(day(5, 3), "k", "old", simhash=hx(base))
    agent.write(day(5, 4), "k", "near", simhash=hx(base ^ 0b1))       # d=1
    agent.write(day(5, 6), "k", "newest", simhash=hx(base ^ 0b110))   # d=2 to old
    # equal last-modified: more citations is newer; then the smaller id is newer
    agent.write(day(5, 3), "t", "x1", simhash=hx(0xAAAA))
    agent.write(day(5, 3), "t", "x2", simhash=hx(0xAAAA))
    agent.write(day(5, 3), "t", "x3", simhash=hx(0xAAAA))
    agent.search(day(5, 30), [], cite=[("t", "x3")])
    got = review_by_id(agent.store(), signal_filter=["duplicate"], days_back=30)
    assert got["k", "old"].duplicate_of == "near"
    assert got["k", "old"].score == 20 + 3 * 2
    assert got["k", "near"].duplicate_of == "newest"  # d=3 from near, newer
    assert ("k", "newest") not in got
    assert got["t", "x1"].duplicate_of == "x3"
    assert got["t", "x2"].duplicate_of == "x3"
    assert ("t", "x3") not in got
    assert got["t", "x2"].score == 20 + 3 * 3  # same simhash, different content


def test_signals_combine_filter_and_sort(tmp_path):
    agent = Agent(tmp_path / "m.db")
    for d in (10, 11, 12):
        agent.search(day(5, d), [pb("a", tokens=100), pb("b", tokens=200)])
    agent.write(day(5, 13), "pb", "a", op="update", superseded_by="b")
    agent.write(day(3, 1), "pb", "s", created_at="2025-01-01T00:00:00Z")
    store = agent.store()
    review = store.memory_review(now=NOW)
    assert [(c.entity_id, c.signals, c.score, c.wasted_tokens) for c in review] == [
        ("a", ["supersedeable", "high_cost_low_cite"], 100, 300),
        ("s", ["stale"], 71, 0),
        ("b", ["high_cost_low_cite"], 33, 600),
    ]
    assert [c.entity_id for c in store.memory_review(now=NOW, signal_filter=["stale"])] == ["s"]
    assert [c.entity_id for c in store.memory_review(
        now=NOW, signal_filter=["stale", "supersedeable"])] == ["a", "s"]
    assert store.memory_review(now=NOW, signal_filter=[]) == []
    with pytest.raises(ValueError, match="unknown signal 'stael'"):
        store.memory_review(now=NOW, signal_filter=["stael"])


def test_review_per_user_and_titles(tmp_path):
    agent = Agent(tmp_path / "m.db")
    agent.write(day(3, 1), "pb", "mine", user="u1", created_at="2025-01-01T00:00:00Z",
                title="Refund policy")
    agent.write(day(3, 1), "pb", "theirs", user="u2", created_at="2025-01-01T00:00:00Z")
    store = agent.store()
    assert [c.entity_id for c in store.memory_review(now=NOW, user_id="u1")] == ["mine"]
    assert [c.entity_id for c in store.memory_review(now=NOW, user_id="u2")] == ["theirs"]
    assert [c.title for c in store.memory_review(now=NOW)] == ["Refund policy", "theirs"]
    assert store.memory_review(now=NOW, user_id="nobody") == []


def test_latest_event_wins_per_field(tmp_path):
    agent = Agent(tmp_path / "m.db")
    agent.write(day(1, 1), "pb", "x", title="first", created_at="2025-01-01T00:00:00Z")
    agent.write(day(2, 1), "pb", "x", op="update", title="second")
    # an older event exported later does not override a newer value
    agent.write(day(1, 15), "pb", "x", op="update", title="older")
    got = review_by_id(agent.store())
    assert got["pb", "x"].title == "second"
    assert got["pb", "x"].last_modified_at == datetime(2025, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------
# signals.review and the duplicate helpers on hand-built facts
# --------------------------------------------------------------------------

def facts(entity_type, entity_id, **fields):
    from memobs_otel.store.query import EntityFacts

    values = dict(
        title=None, content_head=None, content_hash=None, simhash=None, status=None,
        parent_id=None, superseded_by=None, reported_time=False, created_ns=None,
        updated_ns=None, first_seen_ns=0, injections=0, tokens=0, last_injected_ns=None,
        citations=0,
    )
    values.update(fields)
    return EntityFacts(entity_type, entity_id, **values)


def test_review_sorts_ties_by_type_then_id_and_caps_scores():
    from memobs_otel.store.signals import review

    end = ns(NOW)
    start = end - 30 * 86_400 * 10**9
    hot = dict(injections=25, tokens=1000, last_injected_ns=end)  # score capped at 49
    entities = [
        facts("b", "10", **hot), facts("ab", "2", **hot), facts("a", "9", **hot),
        facts("a", "10", **hot), facts("b", "1", **hot), facts("ab", "10", **hot),
        facts("a", "x", injections=5, tokens=10, last_injected_ns=end),  # 30 + 5
        facts("a", "y", injections=5, tokens=10, citations=9, last_injected_ns=end),  # rate 1.0
        facts("a", "z", injections=5, tokens=10, status="ARCHIVED", last_injected_ns=end),
    ]
    got = review(entities, start, end, 3, 0.5)
    assert [(c.entity_type, c.entity_id, c.score, c.wasted_tokens) for c in got] == [
        ("a", "10", 49, 1000), ("a", "9", 49, 1000), ("ab", "10", 49, 1000),
        ("ab", "2", 49, 1000), ("b", "1", 49, 1000), ("b", "10", 49, 1000),
        ("a", "x", 35, 10),
    ]
    assert got[0].last_injected_at == NOW and got[0].last_modified_at == datetime(1970, 1, 1, tzinfo=UTC)
    assert got[0].citation_rate == 0.0 and got[0].signals == ["high_cost_low_cite"]
    assert review(entities, start, end, 3, 0.5, frozenset()) == []


def test_twin_groups_keep_only_fingerprints_that_can_have_a_twin():
    from memobs_otel.store.duplicates import twin_groups

    base = 0x0123456789ABCDEF
    values = [base, 0xFFFF, base ^ 0b101, 0xFFFF, 0x7EDCBA9876543210, base]
    groups, neighbours = twin_groups(values)
    assert dict(groups) == {base: [0, 5], 0xFFFF: [1, 3], base ^ 0b101: [2]}
    assert neighbours == {base: [(base ^ 0b101, 2)], base ^ 0b101: [(base, 2)]}
    assert twin_groups([base, 0x7EDCBA9876543210]) == ({}, {})


def test_newer_twins_needs_newness_of_grouped_entities_only():
    from memobs_otel.store.duplicates import newer_twins, pick_twins, twin_groups

    base = 0x0F0F0F0F0F0F0F0F
    values = [base, base ^ 0b1, base ^ 0b110, 0xAAAA, 0xAAAA, 0xAAAA, 1 << 63]
    hashes = ["h0", None, "h2", "same", "same", "other", None]
    newness = [0, 1, 2, 3, 5, 4, 6]
    expected = {0: (1, 1, False), 1: (2, 3, False), 3: (4, 0, True), 5: (4, 0, False)}
    assert newer_twins(values, hashes, newness) == expected
    groups, neighbours = twin_groups(values)
    assert 6 not in {i for members in groups.values() for i in members}
    ranks = {0: 0, 1: 1, 2: 2, 3: 3, 4: 5, 5: 4}  # no rank for the lone entity 6
    assert pick_twins(groups, neighbours, hashes, ranks) == expected


def test_near_neighbours_packed_and_python_band_cuts_agree():
    from memobs_otel.store.duplicates import near_neighbours

    base = 0xFEDCBA9876543210
    got = near_neighbours([base, base ^ (1 << 63) ^ 1, base ^ 0xF, base])
    assert {k: sorted(v) for k, v in got.items()} == {
        base: [(base ^ (1 << 63) ^ 1, 2)],
        base ^ (1 << 63) ^ 1: [(base, 2)],
    }
    # not an unsigned 64-bit value: cut in Python, same answer
    assert near_neighbours([(1 << 64) | 1, 1]) == {(1 << 64) | 1: [(1, 1)], 1: [((1 << 64) | 1, 1)]}
