from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlgraph.sources.org import (
    InvalidPageToken,
    MonotonicClock,
    Organisation,
    decode_page_token,
    encode_page_token,
    isoformat,
)


def org_with_teams(n: int) -> Organisation:
    org = Organisation()
    for i in range(n):
        org.create("teams", {"team_id": f"team-{i:03d}"})
    return org


def test_a_frozen_clock_still_moves_forward() -> None:
    clock = MonotonicClock(lambda: datetime(2025, 1, 1, tzinfo=UTC))
    stamps = [clock() for _ in range(3)]
    assert stamps == [
        "2025-01-01T00:00:00.000000Z",
        "2025-01-01T00:00:00.000001Z",
        "2025-01-01T00:00:00.000002Z",
    ]
    assert isoformat(datetime(2025, 1, 1, tzinfo=UTC)) == "2025-01-01T00:00:00Z"


def test_create_update_delete_keep_updated_at() -> None:
    org = org_with_teams(1)
    created = org.get("teams", "team-000")
    assert created is not None
    updated = org.update("teams", "team-000", {"name": "Team"})
    assert updated["name"] == "Team"
    assert updated["updated_at"] > created["updated_at"]
    with pytest.raises(KeyError):
        org.create("teams", {"team_id": "team-000"})
    assert org.delete("teams", "team-000")["name"] == "Team"
    with pytest.raises(KeyError):
        org.update("teams", "team-000", {})
    assert org.get("teams", "team-000") is None


def test_reads_hand_out_copies() -> None:
    org = Organisation()
    org.create("users", {"username": "u", "team_ids": ["a"]})
    copy = org.get("users", "u")
    assert copy is not None
    copy["team_ids"].append("b")
    assert org.get("users", "u") == {
        "username": "u",
        "team_ids": ["a"],
        "updated_at": copy["updated_at"],
    }


def test_pages_walk_every_id_once_in_order_even_while_it_changes() -> None:
    org = org_with_teams(25)
    seen: list[str] = []
    items, token = org.page("teams", 10)
    seen += [i["id"] for i in items]
    org.delete("teams", "team-003")  # already seen
    org.create("teams", {"team_id": "team-999"})  # still ahead
    while token:
        items, token = org.page("teams", 10, token)
        seen += [i["id"] for i in items]
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 26
    assert "team-999" in seen


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    assert decode_page_token(encode_page_token("a/b é")) == "a/b é"
    with pytest.raises(InvalidPageToken):
        decode_page_token("%%%")


def test_unknown_collections_are_named() -> None:
    with pytest.raises(KeyError, match="unknown collection 'widgets'"):
        Organisation().get("widgets", "x")
