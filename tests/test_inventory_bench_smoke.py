"""The inventory benchmark (section 11) runs at a tiny size: every item stored, the missing one deleted."""

from __future__ import annotations

from benchmarks import run


def test_inventory_rows():
    rows = run.collect(quick=True, only={"inventory"})
    assert [(row.section, row.name) for row in rows] == [
        ("11", "record_inventory of 2k items: caller time"),
        ("11", "  until the SQLite file holds them"),
        ("11", "  a second complete snapshot, one item missing"),
        ("11", "  peak memory growth over both"),
    ]
    assert rows[1].ok is True and "3,999 inventory writes" in rows[1].detail
    assert "1 entity marked deleted" in rows[2].detail
