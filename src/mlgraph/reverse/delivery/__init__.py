"""Delivering the transition outbox: streams read it from a cursor, webhooks get signed POSTs.

- ``notices``: an outbox row as the event a subscriber receives, read after a cursor.
- ``bell``: wakes waiting streams and the dispatcher when the outbox grows.
- ``streams``: one saved search's notices, from a cursor, as they come (SSE, GraphQL).
- ``webhooks``: webhooks and their deliveries in the store (fan-out, claims, replay).
- ``signing``: the HMAC-SHA256 signature a receiver checks.
- ``dispatcher``: POSTs due deliveries, retries with backoff, dead-letters.

``reverse`` must not know about API tokens: who may receive what is asked of a
``Gate`` the API supplies (``access``).
"""

from mlgraph.reverse.delivery.access import ALLOW_ALL, Gate, OpenGate, Reader
from mlgraph.reverse.delivery.bell import OutboxBell
from mlgraph.reverse.delivery.dispatcher import DeliveryPolicy, Dispatcher
from mlgraph.reverse.delivery.notices import Notice, last_notice_id, read_notices
from mlgraph.reverse.delivery.signing import SIGNATURE_HEADER, sign, verify
from mlgraph.reverse.delivery.streams import follow
from mlgraph.reverse.delivery.webhooks import Delivery, Webhook, Webhooks

__all__ = [
    "ALLOW_ALL",
    "SIGNATURE_HEADER",
    "Delivery",
    "DeliveryPolicy",
    "Dispatcher",
    "Gate",
    "Notice",
    "OpenGate",
    "OutboxBell",
    "Reader",
    "Webhook",
    "Webhooks",
    "follow",
    "last_notice_id",
    "read_notices",
    "sign",
    "verify",
]
