"""Vendor protocol ingest beside Segment batch ingest, in the same run.

    uv run python benchmarks/protocols.py             # 100,000 events per figure, 3 rounds
    uv run python benchmarks/protocols.py --quick     # 20,000 events, 1 round

Two figures for each protocol, each with Segment's `/v1/batch` measured in the same run as its
baseline (goal: ratio >= 0.8); a browser SDK's events are compared with what analytics.js sends
for the same event (the browser's context comes with every event):
  - decode: events/s through the decoder alone (`eventtui.protocols` vs `model.decode_frame`),
    in this process, 100-event bodies as the SDKs send them (20,000 events, 5 passes), body by
    body with every protocol in turn: the part of ingest a protocol adds.
  - HTTP: durable events/s end to end, an `eventtui collect` subprocess on a fresh store and 4
    clients each with one 100-event request in flight, from a load generator in its own process
    (benchmarks/http_ingest.py's method); a 200 means committed, and the store is counted.
Bodies are what each SDK sends (tests/test_protocols_*.py run the real SDKs): PostHog as
posthog-python's `/batch/` and as posthog-js's gzipped array, Snowplow as the browser tracker's
tp2 payload (self-describing events and contexts base64-encoded), Amplitude as `/2/httpapi`,
Mixpanel as a `data=` form of a JSON array (mixpanel-python's BufferedConsumer) and of base64.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.http_ingest import CLIENTS, PER_BATCH, Collector  # noqa: E402

STAMP = "2026-11-26T04:00:00.000Z"
MS = 1795665600000


def _props(i: int) -> dict[str, Any]:
    return {"path": f"/p/{i % 50}", "plan": "pro", "total": i % 300 + 0.5, "n": i}


def _name(i: int) -> str:
    return ("page_view", "signup", "checkout_completed", "heartbeat")[i % 4]


def segment(i: int, c: int) -> dict[str, Any]:
    return {
        "type": "track", "event": _name(i), "userId": f"user-{i % 977}", "messageId": f"{c}-{i}",
        "timestamp": STAMP, "properties": _props(i),
        "context": {"library": {"name": "analytics-python", "version": "2.3.4"}},
    }  # fmt: skip


def segment_browser(i: int, c: int) -> dict[str, Any]:
    """What analytics.js sends for the same event: a browser's context comes with it."""
    return {
        **segment(i, c), "anonymousId": f"d-{i % 977}",
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.84.3"},
            "page": {"path": f"/p/{i % 50}", "referrer": "", "search": "", "title": "Shop",
                     "url": f"http://localhost:3000/p/{i % 50}"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0",
            "locale": "en-US", "timezone": "UTC", "screen": {"width": 1920, "height": 1080},
            "sessionId": "s-1",
        },
    }  # fmt: skip


def posthog(i: int, c: int) -> dict[str, Any]:
    return {
        "event": _name(i), "distinct_id": f"user-{i % 977}", "uuid": f"{c}-{i}",
        "timestamp": STAMP,
        "properties": {**_props(i), "$lib": "posthog-python", "$lib_version": "7.91.1",
                       "$geoip_disable": True, "$is_server": True},
    }  # fmt: skip


def posthog_js(i: int, c: int) -> dict[str, Any]:
    web = {
        "$os": "Linux", "$browser": "Chrome", "$device_type": "Desktop",
        "$current_url": f"http://localhost:3000/p/{i % 50}", "$host": "localhost:3000",
        "$pathname": f"/p/{i % 50}", "$browser_version": 130, "$screen_height": 1080,
        "$screen_width": 1920, "$lib": "web", "$lib_version": "1.449.2",
        "$insert_id": f"x{c}{i}", "$time": MS / 1000, "$device_id": f"d-{i % 977}",
        "$session_id": "s-1", "$window_id": "w-1", "token": "phc_x",
        "distinct_id": f"user-{i % 977}", "$is_identified": True,
    }  # fmt: skip
    return {
        "uuid": f"{c}-{i}", "event": _name(i), "properties": {**_props(i), **web},
        "timestamp": STAMP,
    }  # fmt: skip


def _b64(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def snowplow(i: int, c: int) -> dict[str, Any]:
    unstruct = {
        "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
        "data": {"schema": f"iglu:com.acme/{_name(i)}/jsonschema/1-0-0", "data": _props(i)},
    }
    contexts = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [{"schema": "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
                  "data": {"id": "f0b3c0b3-6a7d-4e8b-9d2f-3c2b1a0f9e8d"}}],
    }  # fmt: skip
    return {
        "e": "ue", "eid": f"{c}-{i}", "tv": "js-4.10.1", "tna": "sp", "aid": "my-app",
        "p": "web", "cookie": "1", "cs": "UTF-8", "lang": "en-US", "res": "1920x1080",
        "cd": "24", "tz": "UTC", "dtm": str(MS), "stm": str(MS), "vp": "1920x960",
        "ds": "1920x960", "vid": "1", "sid": "s-1", "duid": f"d-{i % 977}",
        "uid": f"user-{i % 977}", "url": f"http://localhost:3000/p/{i % 50}",
        "ue_px": _b64(unstruct), "cx": _b64(contexts),
    }  # fmt: skip


def amplitude(i: int, c: int) -> dict[str, Any]:
    return {
        "event_type": _name(i), "user_id": f"user-{i % 977}", "insert_id": f"{c}-{i}",
        "time": MS, "event_properties": _props(i), "library": "amplitude-python/1.3.0",
    }  # fmt: skip


def mixpanel(i: int, c: int) -> dict[str, Any]:
    return {
        "event": _name(i),
        "properties": {
            "token": "tok", "distinct_id": f"user-{i % 977}", "time": MS / 1000,
            "$insert_id": f"{c}-{i}", "mp_lib": "python", "$lib_version": "5.4.1", **_props(i),
        },
    }  # fmt: skip


def _form(data: str) -> bytes:
    return urllib.parse.urlencode({"data": data, "verbose": "1", "ip": "0"}).encode()


# name -> (path, content type, gzip?, body of a list of events)
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
Body = Callable[[list[Any]], bytes]
PROTOCOLS: dict[str, tuple[str, str, Callable[[int, int], Any], Body]] = {
    "segment /v1/batch": ("/v1/batch", JSON, segment, lambda e: json.dumps({"batch": e}).encode()),
    "segment /v1/batch (analytics.js)": (
        "/v1/batch", JSON, segment_browser, lambda e: json.dumps({"batch": e}).encode(),
    ),
    "posthog /batch/ (python)": (
        "/batch/", JSON, posthog,
        lambda e: json.dumps({"api_key": "k", "batch": e, "sent_at": STAMP}).encode(),
    ),
    "posthog /e/ gzip (posthog-js)": (
        "/e/", "text/plain", posthog_js, lambda e: gzip.compress(json.dumps(e).encode()),
    ),
    "snowplow tp2 (browser, base64)": (
        "/com.snowplowanalytics.snowplow/tp2", JSON, snowplow,
        lambda e: json.dumps({"schema": "iglu:payload_data", "data": e}).encode(),
    ),
    "amplitude /2/httpapi": (
        "/2/httpapi", JSON, amplitude, lambda e: json.dumps({"api_key": "k", "events": e}).encode(),
    ),
    "mixpanel /track form JSON": ("/track", FORM, mixpanel, lambda e: _form(json.dumps(e))),
    "mixpanel /track form base64": (
        "/track", FORM, mixpanel, lambda e: _form(base64.b64encode(json.dumps(e).encode()).decode()),
    ),
}  # fmt: skip
BASELINE = "segment /v1/batch"
# A browser SDK's events carry the browser's context: they are compared with analytics.js's.
BROWSER_BASELINE = "segment /v1/batch (analytics.js)"
BROWSER = ("posthog /e/ gzip (posthog-js)", "snowplow tp2 (browser, base64)")


def bodies(name: str, n_events: int, client: int) -> list[bytes]:
    _, _, make, wrap = PROTOCOLS[name]
    share = [make(i, client) for i in range(n_events // CLIENTS)]
    return [wrap(share[i : i + PER_BATCH]) for i in range(0, len(share), PER_BATCH)]


# --- decode only ---------------------------------------------------------------------------------


def _decoder(name: str) -> Callable[[bytes], int]:
    """Decode one body of `name` as the listener would (inflating included); its event count."""
    from eventtui.model import decode_frame
    from eventtui.protocols import ROUTES, Options, Request

    path, content_type, _, _ = PROTOCOLS[name]
    protocol = next((r.protocol for r in ROUTES if r.path == path), None)

    def decode(body: bytes) -> int:
        if protocol is None:
            frame = decode_frame(body, binary=False, client="bench", source="segment")
        else:
            if protocol.encoding({}, body) == "gzip":
                body = gzip.decompress(body)
            request = Request("POST", path, {}, content_type, body)
            frame = protocol.decode(request, Options("bench", time.time(), 512 * 1024))
        if frame.refusals:
            raise RuntimeError(f"{name}: refused {frame.refusals[0].reason}")
        return len(frame.events)

    return decode


def decode_rates(n_events: int, passes: int = 5) -> dict[str, float]:
    """Events/s through each decoder alone. Body by body, every protocol in turn: a change of load
    on the machine falls on all of them alike, which is what makes the ratios comparable."""
    work = {
        name: [b for c in range(CLIENTS) for b in bodies(name, n_events, c)] for name in PROTOCOLS
    }
    decoders = {name: _decoder(name) for name in PROTOCOLS}
    spent = dict.fromkeys(PROTOCOLS, 0.0)
    events = dict.fromkeys(PROTOCOLS, 0)
    clock = time.perf_counter
    for _ in range(passes):
        for i in range(len(work[BASELINE])):
            for name, decode in decoders.items():
                start = clock()
                events[name] += decode(work[name][i])
                spent[name] += clock() - start
    return {name: events[name] / spent[name] for name in PROTOCOLS}


# --- end to end over HTTP ------------------------------------------------------------------------


async def _client(
    url: str, path: str, content_type: str, gzipped: bool, batch: list[bytes]
) -> None:
    headers = {"Content-Type": content_type}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        for body in batch:
            async with session.post(f"{url}{path}", data=body) as response:
                answer = await response.json()
                if response.status != 200 or answer["refused"]:
                    raise RuntimeError(f"HTTP {response.status}: {answer}")


def _load(name: str, url: str, per_client: list[list[bytes]], out: Any) -> None:
    path, content_type, _, _ = PROTOCOLS[name]

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(_client(url, path, content_type, False, b) for b in per_client))
        return time.perf_counter() - start

    out.send(asyncio.run(main()))


def http_rate(name: str, n_events: int, tmp: Path) -> float:
    per_client = [bodies(name, n_events, c) for c in range(CLIENTS)]
    expected = n_events // CLIENTS * CLIENTS
    collector = Collector(tmp / f"{time.monotonic_ns()}.db")
    try:
        parent, child = mp.Pipe()
        proc = mp.Process(target=_load, args=(name, collector.http_url, per_client, child))
        proc.start()
        seconds = parent.recv()
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"the {name} load generator failed")
        stored = collector.stored()
        if stored != expected:
            raise RuntimeError(
                f"{name}: {stored:,} events stored after every answer, not {expected:,}"
            )
    finally:
        collector.stop()
    return expected / seconds


def run(n_events: int, rounds: int, http: bool) -> dict[str, dict[str, float]]:
    """Medians of interleaved rounds: {"decode": {name: events/s}, "http": {...}}."""
    figures: dict[str, dict[str, list[float]]] = {"decode": {}, "http": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            # Decoding alone is quick: 20,000 events (held in memory for every protocol at once)
            # decoded 5 times over, for a figure above the noise.
            for name, rate in decode_rates(min(n_events, 20_000)).items():
                figures["decode"].setdefault(name, []).append(rate)
            for name in PROTOCOLS:
                if http:
                    figures["http"].setdefault(name, []).append(
                        http_rate(name, n_events, Path(tmp))
                    )
    return {
        kind: {name: statistics.median(values) for name, values in by_name.items()}
        for kind, by_name in figures.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20,000 events, one round")
    parser.add_argument("--events", type=int, help="events per figure (default 100,000)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; --quick 1)")
    parser.add_argument("--decode-only", action="store_true", help="skip the HTTP figures")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    n = args.events or (20_000 if args.quick else 100_000)
    rounds = args.rounds or (1 if args.quick else 3)
    result = run(n, rounds, http=not args.decode_only)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{n:,} events per figure, {PER_BATCH}-event bodies, {rounds} round(s); goal >= 0.80")
    for kind, title in (
        ("decode", "decode only"),
        ("http", f"HTTP, {CLIENTS} clients, 200 after commit"),
    ):
        if not result[kind]:
            continue
        print(f"\n{title:44} {'events/s':>12} {'ratio':>7}  baseline")
        for name, rate in result[kind].items():
            base = BROWSER_BASELINE if name in BROWSER else BASELINE
            note = "" if name.startswith("segment") else base
            print(f"{name:44} {rate:>12,.0f} {rate / result[kind][base]:>7.2f}  {note}")


if __name__ == "__main__":
    main()
