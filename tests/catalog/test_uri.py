from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlgraph.catalog import URI, format_uri, parse_uri
from mlgraph.errors import InvalidURI

SEED = "aip://model/registry/ranking-model-v5-20XX0101"


def test_the_seed_uri_parses_into_its_parts() -> None:
    parsed = parse_uri(SEED)
    assert parsed == URI("model", "registry", "ranking-model-v5-20XX0101", "aip")
    assert str(parsed) == SEED


@given(st.text(min_size=1))
def test_any_id_round_trips(id: str) -> None:
    text = format_uri("dataset", "catalog", id)
    assert parse_uri(text).id == id
    assert format_uri("dataset", "catalog", parse_uri(text).id) == text


@pytest.mark.parametrize(
    "id",
    ["a/b/c", "with space", "naïve ünïcode ✓", "100%", "q?x=1#frag", "tab\there", "/leading"],
)
def test_awkward_ids_round_trip_and_stay_one_line(id: str) -> None:
    text = format_uri("feature", "store", id)
    assert "\t" not in text and " " not in text
    assert parse_uri(text).id == id


def test_unicode_stays_readable() -> None:
    assert format_uri("user", "identity", "zoë") == "aip://user/identity/zoë"


def test_scheme_is_configurable_and_checked() -> None:
    assert str(parse_uri("acme://model/registry/x", scheme="acme")) == "acme://model/registry/x"
    with pytest.raises(InvalidURI, match="expected scheme 'aip', found 'acme'"):
        parse_uri("acme://model/registry/x", scheme="aip")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected '{scheme}://"),
        ("model/registry/x", "expected '{scheme}://"),
        ("aip://model/registry", "found 2 of the 3 parts"),
        ("aip://model/registry/", "the id is empty"),
        ("aip://Model/registry/x", "invalid URI kind 'Model'"),
        ("aip://model//x", "invalid URI source ''"),
        ("AIP://model/registry/x", "invalid URI scheme 'AIP'"),
        ("aip://model/registry/%FF", "bad percent-encoding"),
    ],
)
def test_malformed_uris_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidURI) as err:
        parse_uri(text)
    assert message in str(err.value)


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidURI, match="expected a string"):
        parse_uri(42)  # type: ignore[arg-type]
