"""Vendor ingest protocols: one decoder module per analytics SDK family, from request to events.

Each module turns one received HTTP request (`Request`: its method, path, query and inflated
body) into the common event model (`model.StoredEvent` rows and `Refusal`s), and says how its
SDKs expect to be answered. `ROUTES` is the one table the HTTP listener reads: a path, the
methods it takes, and its `Protocol`. The listener owns everything else (limits, gzip, the
commit wait), so an event sent by any SDK is received, stored and acknowledged on one path.

| source | module | what its SDKs send |
|---|---|---|
| posthog | `posthog` | `/batch/`, `/capture/`, `/e/`, `/i/v0/e/` (+ `/decide/`, `/flags/` answered empty) |
| snowplow | `snowplow` | `GET /i`, `POST /com.snowplowanalytics.snowplow/tp2` |
| amplitude | `amplitude` | `/2/httpapi`, `/batch` |
| mixpanel | `mixpanel` | `/track`, `/import`, `/engage`, `/groups` |

Segment's API (and RudderStack's SDKs, which speak it) stays in `model.decode_frame`: it is the
shape the rest of eventtui already is.

May import: msgspec, pybase64 (common's base64), model.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from eventtui.protocols import amplitude, mixpanel, posthog, snowplow
from eventtui.protocols.common import Answer, Options, Protocol, Request

__all__ = ["CANNED", "ROUTES", "Answer", "Options", "Protocol", "Request", "Route"]


class Route(NamedTuple):
    path: str
    methods: tuple[str, ...]
    protocol: Protocol


_POST: Final = ("POST",)
_BOTH: Final = ("GET", "POST")

ROUTES: Final = (
    *(Route(path, _BOTH, posthog.PROTOCOL) for path in posthog.PATHS),
    Route("/i", ("GET",), snowplow.PROTOCOL),
    Route("/com.snowplowanalytics.snowplow/tp2", _POST, snowplow.PROTOCOL),
    *(Route(path, _POST, amplitude.PROTOCOL) for path in amplitude.PATHS),
    *(Route(path, _BOTH, mixpanel.PROTOCOL) for path in mixpanel.PATHS),
)

# Requests an SDK makes that carry no events, answered with a fixed body so that the SDK runs
# without logging errors: (path, content type, answer).
_JSON: Final = "application/json"
CANNED: Final = (
    *((path, _JSON, posthog.FLAGS_ANSWER) for path in posthog.FLAG_PATHS),
    (posthog.CONFIG_PATH, _JSON, posthog.CONFIG_ANSWER),
    (posthog.CONFIG_SCRIPT_PATH, "text/javascript", posthog.CONFIG_SCRIPT),
)
