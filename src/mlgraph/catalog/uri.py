"""Global entity URIs: ``{scheme}://{kind}/{source}/{id}``.

The id is everything after the third slash, so ids may contain ``/``. Only the
characters that would make the URI ambiguous or unreadable (``%``, ``?``,
``#``, whitespace and control characters) are percent-encoded; unicode stays
readable. ``parse_uri(str(uri))`` and ``str(parse_uri(text))`` round-trip for
every id and every canonical URI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from mlgraph.errors import InvalidURI

DEFAULT_SCHEME = "aip"

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*\Z")
_SEGMENT = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_ENCODE = re.compile(r"[%?#\s\x00-\x1f\x7f]")


@dataclass(frozen=True, order=True, slots=True)
class URI:
    """A parsed entity URI."""

    kind: str
    source: str
    id: str
    scheme: str = DEFAULT_SCHEME

    def __post_init__(self) -> None:
        if not _SCHEME.match(self.scheme):
            raise InvalidURI(
                f"invalid URI scheme {self.scheme!r}: use lowercase letters and digits"
            )
        for part, value in (("kind", self.kind), ("source", self.source)):
            if not _SEGMENT.match(value):
                raise InvalidURI(
                    f"invalid URI {part} {value!r}: use lowercase letters, digits, '-' and '_'"
                )
        if not self.id:
            raise InvalidURI("invalid URI: the id is empty")

    def __str__(self) -> str:
        encoded = _ENCODE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), self.id)
        return f"{self.scheme}://{self.kind}/{self.source}/{encoded}"


def format_uri(kind: str, source: str, id: str, scheme: str = DEFAULT_SCHEME) -> str:
    """The canonical URI text for an entity id at a source."""
    return str(URI(kind, source, id, scheme))


def parse_uri(text: str, scheme: str | None = None) -> URI:
    """Parse ``text``; with ``scheme``, also require that scheme."""
    if not isinstance(text, str):
        raise InvalidURI(f"invalid URI {text!r}: expected a string")
    return _parse(text, scheme)


# A transaction validates each URI it touches several times (the entity, its owners, its
# references, each edge's ends); URIs are immutable, so a parse is worth remembering.
# Failures raise and are not cached.
@lru_cache(maxsize=65_536)
def _parse(text: str, scheme: str | None) -> URI:
    head, sep, rest = text.partition("://")
    if not sep:
        raise InvalidURI(
            f"invalid URI {text!r}: expected '{{scheme}}://{{kind}}/{{source}}/{{id}}'"
        )
    parts = rest.split("/", 2)
    if len(parts) != 3:
        raise InvalidURI(
            f"invalid URI {text!r}: expected '{{scheme}}://{{kind}}/{{source}}/{{id}}', "
            f"found {len(parts)} of the 3 parts after '://'"
        )
    if scheme is not None and head != scheme:
        raise InvalidURI(f"invalid URI {text!r}: expected scheme {scheme!r}, found {head!r}")
    try:
        return URI(parts[0], parts[1], unquote(parts[2], errors="strict"), head)
    except UnicodeDecodeError as exc:
        raise InvalidURI(f"invalid URI {text!r}: bad percent-encoding in the id") from exc
    except InvalidURI as exc:
        raise InvalidURI(f"{exc} (in {text!r})") from None


def canonical_uri(text: str, scheme: str | None = None) -> str:
    """``text`` parsed and formatted again, so equal URIs compare equal as strings."""
    return str(parse_uri(text, scheme))
