"""The bounded id memory behind the exactly-once checks."""

from __future__ import annotations

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
