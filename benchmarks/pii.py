"""Personal-data detectors at ingest: what they cost, beside the same collector without them.

    uv run python benchmarks/pii.py            # 3 interleaved rounds of 400k events
    uv run python benchmarks/pii.py --quick    # one round of 100k

Figures (medians of the rounds, baseline and measured run interleaved):
  1. 100-event frames from 4 clients (benchmarks/ingest.py's events and clients): `eventtui
     collect` with the detectors (the default, `[plan] pii = "warn"`) vs `[plan] pii = "off"`.
     Goal >= 0.90x.
  2. the same, every tenth event carrying an email address in its properties (found, decoded,
     walked, flagged).
  3. the collector process's CPU time per event for 1 and 2 (steadier than wall time when the
     machine is shared). Goal <= 1.10x.
  4. the ingest check alone, microseconds per event (the events of 1, no IO), beside
     `model.normalise` of the same events: what the detectors add to the decode path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ingest  # noqa: E402  (benchmarks/ingest.py: the server, the clients, the events)

OFF = '[plan]\npii = "off"\n'
ON = '[plan]\npii = "warn"\n'
_plain_event = ingest.event


def with_email(i: int, client: int) -> dict[str, Any]:
    event = _plain_event(i, client)
    if i % 10 == 0:
        event["properties"]["contact"] = f"user{i}@example.com"
    return event


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(config_text: str, events: int, tmp: Path, tag: str) -> tuple[float, float]:
    """(durable events/s, the collector process's CPU microseconds per event). The CPU figure
    is the steadier one on a shared machine: other processes stretch wall time, not our CPU."""
    config = tmp / f"{tag}.toml"
    config.write_text(config_text)
    server = ingest.Server("ours", tmp / f"{tag}.db", config)
    try:
        before = cpu_seconds(server.proc.pid)
        rate = ingest.throughput(server.url, events, 100, bare=False)
        return rate, (cpu_seconds(server.proc.pid) - before) / events * 1e6
    finally:
        server.stop()


def per_event_cost(n: int) -> tuple[float, float]:
    from eventtui.collector.validation import plan_check
    from eventtui.config import Config, PlanConfig
    from eventtui.model import normalise

    events = [ingest.event(i, 0) for i in range(n)]
    check = plan_check(Config(plan=PlanConfig(pii="warn")))
    assert check is not None
    start = time.perf_counter()
    stored = [normalise(e, client="b", received_at=0.0) for e in events]
    decode = time.perf_counter() - start
    start = time.perf_counter()
    for s in stored:
        check(s)
    checked = time.perf_counter() - start
    return checked / n * 1e6, decode / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, n = (1, 100_000) if args.quick else (3, 400_000)
    kinds = ("off", "on", "off_email", "on_email")
    figures: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    plain = ingest.event
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            for kind in kinds if r % 2 == 0 else reversed(kinds):
                ingest.event = with_email if kind.endswith("email") else plain
                rate, us = run(ON if kind.startswith("on") else OFF, n, tmp, kind)
                figures[kind].append(rate)
                cpu[kind].append(us)
            ingest.event = plain
        print(
            f"round {r + 1}: "
            + ", ".join(f"{k} {figures[k][-1]:,.0f}/s {cpu[k][-1]:.2f} us" for k in kinds),
            flush=True,
        )
    med = {k: statistics.median(v) for k, v in figures.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    check_us, decode_us = per_event_cost(100_000)
    print()
    print(f"{'figure':58} {'ours':>12} {'baseline':>12} {'ratio':>7} goal")
    print(
        f"{'100-event frames, detectors on, durable events/s':58} {med['on']:>12,.0f} "
        f"{med['off']:>12,.0f} {med['on'] / med['off']:>7.2f} >= 0.90 (pii = off)"
    )
    print(
        f"{'  the same, 1 event in 10 with an email address':58} {med['on_email']:>12,.0f} "
        f"{med['off_email']:>12,.0f} {med['on_email'] / med['off_email']:>7.2f} >= 0.90 (pii = off)"
    )
    print(
        f"{'collector CPU per event, detectors on, us':58} {cpu_med['on']:>12.2f} "
        f"{cpu_med['off']:>12.2f} {cpu_med['on'] / cpu_med['off']:>7.2f} <= 1.10 (pii = off)"
    )
    print(
        f"{'  the same, 1 event in 10 with an email address':58} {cpu_med['on_email']:>12.2f} "
        f"{cpu_med['off_email']:>12.2f} {cpu_med['on_email'] / cpu_med['off_email']:>7.2f} <= 1.10"
    )
    print(
        f"{'the ingest check alone, us per event':58} {check_us:>12.2f} "
        f"{decode_us:>12.2f} {check_us / decode_us:>7.2f} (normalise, us per event)"
    )
    print(json.dumps({k: [round(x) for x in v] for k, v in figures.items()}))
    print(json.dumps({k: [round(x, 2) for x in v] for k, v in cpu.items()}))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
