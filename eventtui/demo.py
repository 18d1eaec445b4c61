"""A built-in synthetic app for `eventtui demo`: realistic traffic over the real websocket.

It behaves like a small SaaS front end: page views, searches, sign-ups, a checkout funnel with
plan, cart total and coupon, a heartbeat every few seconds that goes quiet after a minute (so the
expected-event alarm fires), and a few bad events — refused ones (a name that is not a string,
properties that are not an object) and stored-but-invalid ones (wrong property types against the
demo tracking plan, an unreadable timestamp). Everything goes through `sender.send_frames`, the
same path `eventtui send` uses, so the demo exercises the collector exactly as a client would.

Runs on its own thread and event loop; `stop()` finishes the frame in flight and waits for its ack.

`demo_config` adds what the demo shows off to the user's config: an expected heartbeat and a small
tracking plan (`demo`, and a replay of a demo session, run with it).

May import: config, loop_thread, sender, msgspec. Never Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Final

import msgspec

from eventtui.config import Config, Duration, Expectation, PlanConfig, PlanEvent
from eventtui.loop_thread import LoopThread
from eventtui.sender import SendError, send_frames, with_token

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode

HEARTBEAT_EVERY: Final = 5.0
HEARTBEAT_FOR: Final = 60.0
PATHS: Final = (
    ("/", "Home"),
    ("/pricing", "Pricing"),
    ("/docs/getting-started", "Getting started"),
    ("/blog/launch-week", "Launch week"),
    ("/product/espresso", "Café crème ☕"),
    ("/ja/product", "製品"),
    ("/account", "Account"),
)
PLANS: Final = (("free", 0.0), ("pro", 49.0), ("team", 199.0))
COUPONS: Final = ("SPRING10", "WELCOME", "FRIENDS25")
FEATURES: Final = ("export", "dark_mode", "share_link", "api_key", "invite")
SEARCHES: Final = ("pricing", "sso", "webhooks", "export csv", "délai de livraison")
DEMO_EXPECTATION: Final = Expectation(event="heartbeat", every=Duration(10), grace=Duration(10))


def demo_config(config: Config) -> Config:
    """The user's config plus what the demo shows off: an expected heartbeat and a small plan."""
    expect = config.expect
    if not any(e.event == "heartbeat" for e in expect):
        expect = (*expect, DEMO_EXPECTATION)
    events = dict(config.plan.events)
    events.setdefault("checkout_completed", PlanEvent(schema=CHECKOUT_SCHEMA))
    events.setdefault("sign_up", PlanEvent(schema=SIGN_UP_SCHEMA))
    plan = PlanConfig(strict=config.plan.strict, events=events)
    return msgspec.structs.replace(config, expect=expect, plan=plan)


# The draft is named, as a tracking plan's schema files should: the rules never depend on a default.
_DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"
CHECKOUT_SCHEMA: Final[dict[str, Any]] = {
    "$schema": _DRAFT,
    "type": "object",
    "required": ["plan", "cart_total", "currency"],
    "properties": {
        "plan": {"enum": ["free", "pro", "team"]},
        "cart_total": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "minLength": 3, "maxLength": 3},
        "coupon": {"type": ["string", "null"]},
        "items": {"type": "integer", "minimum": 1},
    },
}
SIGN_UP_SCHEMA: Final[dict[str, Any]] = {
    "$schema": _DRAFT,
    "type": "object",
    "required": ["method"],
    "properties": {"method": {"enum": ["email", "google", "github"]}},
}


class DemoTraffic:
    """See the module docstring. `sent` counts events handed to the collector."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        seed: int | None = None,
        pace: float = 1.0,
        heartbeat_for: float = HEARTBEAT_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = with_token(url, token)
        self.rng = random.Random(seed)
        self.pace = pace
        self.heartbeat_for = heartbeat_for
        self.clock = clock
        self.sent = 0
        self.error: str | None = None
        self._thread = LoopThread("eventtui-demo")

    def start(self) -> None:
        self._thread.start(self._main)

    def stop(self, timeout: float = 5.0) -> None:
        self._thread.stop(timeout)

    async def _main(self, stop: asyncio.Event) -> None:
        started = self.clock()
        while not stop.is_set():
            try:
                await send_frames(self.url, self._frames(started, stop), window=100)
            except SendError as exc:
                self.error = str(exc)
                log.warning("demo traffic: %s", exc)
            # Reconnect after a pause (the collector restarting), unless told to stop.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def _frames(self, started: float, stop: asyncio.Event) -> AsyncIterator[bytes]:
        next_heartbeat = self.clock()
        for delay, frame, count in self._script(started):
            now = self.clock()
            if now >= next_heartbeat and now - started < self.heartbeat_for:
                next_heartbeat = now + HEARTBEAT_EVERY
                yield self._heartbeat(now - started)
                self.sent += 1
            try:
                await asyncio.wait_for(stop.wait(), delay * self.pace)
                return
            except TimeoutError:
                pass
            yield frame
            self.sent += count

    def _heartbeat(self, uptime: float) -> bytes:
        return _encode(
            self._event(
                "heartbeat",
                {"service": "web", "uptime_s": round(uptime)},
                user=None,
                anonymousId="web-1",
            )
        )

    # --- the script --------------------------------------------------------------------------

    def _event(
        self, name: str, properties: dict[str, Any], *, user: str | None, **extra: Any
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event": name,
            "properties": properties,
            "messageId": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "timestamp": time.time(),
            "context": {"library": {"name": "eventtui-demo", "version": "1.0"}},
        }
        if user:
            event["userId"] = user
        else:
            event["anonymousId"] = f"anon-{self.rng.randrange(16**6):06x}"
        event.update(extra)
        return event

    def _script(self, started: float) -> Iterator[tuple[float, bytes, int]]:
        """(pause before, frame, events in it), forever."""
        rng = self.rng
        tick = 0
        while True:
            tick += 1
            user = f"u{rng.randrange(1001, 1041)}" if rng.random() < 0.7 else None
            roll = rng.random()
            props: dict[str, Any]
            if roll < 0.45:
                path, title = rng.choice(PATHS)
                props = {
                    "path": path,
                    "title": title,
                    "referrer": rng.choice(("google", "", "newsletter")),
                }
                yield rng.uniform(0.1, 0.5), _encode(self._event("page_view", props, user=user)), 1
            elif roll < 0.55:
                props = {
                    "query": rng.choice(SEARCHES),
                    "results": rng.randrange(0, 40),
                }
                yield rng.uniform(0.2, 0.6), _encode(self._event("search", props, user=user)), 1
            elif roll < 0.65:
                props = {"feature": rng.choice(FEATURES)}
                yield (
                    rng.uniform(0.2, 0.6),
                    _encode(self._event("feature_used", props, user=user)),
                    1,
                )
            elif roll < 0.72:
                method = rng.choice(("email", "google", "github", "github", "google"))
                if tick % 9 == 0:
                    method = "fax"  # not in the plan's enum: stored, marked invalid
                props = {"method": method, "plan": rng.choice(PLANS)[0]}
                yield rng.uniform(0.3, 0.8), _encode(self._event("sign_up", props, user=user)), 1
            elif roll < 0.86:
                yield (
                    rng.uniform(0.3, 0.8),
                    self._checkout(user or f"u{rng.randrange(1001, 1041)}", tick),
                    3,
                )
            elif roll < 0.97:
                # Several events in one frame, as SDKs batch them.
                batch = [
                    self._event("page_view", {"path": rng.choice(PATHS)[0]}, user=user)
                    for _ in range(rng.randrange(2, 5))
                ]
                yield rng.uniform(0.2, 0.5), _encode({"batch": batch}), len(batch)
            else:
                yield rng.uniform(0.5, 1.0), *self._bad(tick)

    def _checkout(self, user: str, tick: int) -> bytes:
        """A funnel in one batch: started, maybe a coupon, completed."""
        rng = self.rng
        plan, price = rng.choice(PLANS[1:])
        items = rng.randrange(1, 4)
        total = round(price * items, 2)
        coupon = rng.choice(COUPONS) if rng.random() < 0.3 else None
        completed: dict[str, Any] = {
            "plan": plan,
            "cart_total": total,
            "currency": "EUR",
            "coupon": coupon,
            "items": items,
            "order_id": f"ord_{rng.randrange(10**6):06d}",
        }
        if tick % 7 == 0:
            completed["cart_total"] = f"{total:.2f}"  # a string where the plan wants a number
        events = [
            self._event(
                "checkout_started",
                {"cart_total": total, "items": items, "currency": "EUR"},
                user=user,
            ),
            self._event(
                "coupon_applied" if coupon else "checkout_step",
                {"coupon": coupon} if coupon else {"step": "payment"},
                user=user,
            ),
            self._event("checkout_completed", completed, user=user),
        ]
        return _encode(events)

    def _bad(self, tick: int) -> tuple[bytes, int]:
        """Events a buggy client sends; the first two are refused with a reason, the last stored invalid."""
        choice = tick % 3
        if choice == 0:
            return _encode({"event": 42, "properties": {"oops": "name is a number"}}), 1
        if choice == 1:
            return _encode({"event": "page_view", "properties": ["not", "an", "object"]}), 1
        event = self._event("feature_used", {"feature": "export"}, user=None)
        event["timestamp"] = "yesterday-ish"
        return _encode(event), 1
