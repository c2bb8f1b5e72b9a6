"""The bounded id memory behind the exactly-once checks."""

from __future__ import annotations

import sys

import pytest

from actors.recent_ids import RecentIds


def test_it_remembers_only_the_last_ids_added_oldest_forgotten_first() -> None:
    """Memory stays at ``limit``: the oldest id goes when a new one comes."""
    recent = RecentIds(3, ["a", "b"])

    for key in ("c", "d", "e"):
        recent.add(key)

    assert recent.ids == {"c", "d", "e"}
    assert "b" not in recent
    assert "e" in recent
    assert len(recent) == 3


def test_adding_a_remembered_id_again_does_not_renew_or_duplicate_it() -> None:
    """A repeat is not a new id: it neither takes a second place nor pushes another out."""
    recent = RecentIds(2, ["a", "b"])

    recent.add("a")
    recent.add("c")

    assert recent.ids == {"b", "c"}


def test_a_limit_below_one_is_refused() -> None:
    """A memory of nothing would make every duplicate look new."""
    with pytest.raises(ValueError, match="limit"):
        RecentIds(0)


def test_the_memory_keeps_its_size_and_its_ids_while_it_keeps_forgetting() -> None:
    """200,000 ids through a memory of 10,000: the last 10,000 are there, no older one, and
    the set never grows past the size it had when first full (a set that only deletes and
    adds resizes to twice that now and then)."""
    recent: RecentIds[str] = RecentIds(10_000)
    sizes = set()
    for i in range(200_000):
        recent.add(f"fill-{i}")
        if i >= 20_000:
            sizes.add(sys.getsizeof(recent._ids))

    assert len(recent) == 10_000
    assert "fill-199999" in recent and "fill-190000" in recent
    assert "fill-189999" not in recent
    assert len(sizes) == 1, sizes
