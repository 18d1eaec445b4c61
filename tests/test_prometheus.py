"""`GET /metrics` read by Debian's real Prometheus, with the README's own scrape config and alert
rule: an expected event that stops arriving must be a firing alert within every + grace + two
scrape intervals. `.ci/run` installs `prometheus` when it is missing; where it cannot be, these
tests skip and say why."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Collect

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
EVERY = 1.0
GRACE = 1.0
SCRAPE = 1.0

needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="Debian's prometheus is not installed (.ci/run installs it: apt-get install prometheus)",
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (it comes with Debian's prometheus package; .ci/run installs it)",
)


def readme_yaml(name: str) -> str:
    """The ```yaml block of README.md's "Page on-call" that starts with `# name`."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Page on-call", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL):
        if block.startswith(f"# {name}\n"):
            return str(block)
    raise AssertionError(f"README.md has no yaml block for {name}")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, condition: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@needs_promtool
def test_the_readme_alert_rule_and_scrape_config_are_valid(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    (tmp_path / "eventtui-rules.yml").write_text(readme_yaml("eventtui-rules.yml"))
    (tmp_path / "prometheus.yml").write_text(readme_yaml("prometheus.yml"))
    rules = subprocess.run(
        [PROMTOOL, "check", "rules", "eventtui-rules.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 2 rules found" in rules.stdout + rules.stderr
    config = subprocess.run(
        [PROMTOOL, "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert config.returncode == 0, config.stdout + config.stderr


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> str:
        assert PROMETHEUS is not None
        config = readme_yaml("prometheus.yml")
        config = config.replace("scrape_interval: 15s", f"scrape_interval: {SCRAPE:g}s")
        config = config.replace("evaluation_interval: 15s", f"evaluation_interval: {SCRAPE:g}s")
        config = config.replace('"127.0.0.1:8766"', f'"{target}"')
        (tmp_path / "prometheus.yml").write_text(config)
        (tmp_path / "eventtui-rules.yml").write_text(readme_yaml("eventtui-rules.yml"))
        port = free_port()
        with (tmp_path / "prometheus.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [
                        PROMETHEUS,
                        "--config.file=prometheus.yml",
                        f"--storage.tsdb.path={tmp_path / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=warn",
                    ],
                    cwd=tmp_path,
                    stdout=log,
                    stderr=log,
                )
            )
        url = f"http://127.0.0.1:{port}"
        wait_for(
            "prometheus to be ready", lambda: urllib.request.urlopen(f"{url}/-/ready").status == 200
        )
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(30)


@needs_prometheus
def test_prometheus_fires_when_an_expected_event_stops(tmp_path: Path, prometheus_for: Any) -> None:
    config = tmp_path / "eventtui.toml"
    config.write_text(
        f'[[expect]]\nevent = "heartbeat"\nevery = "{EVERY:g}s"\ngrace = "{GRACE:g}s"\n'
    )
    collect = Collect(tmp_path / "events.db", "--config", str(config))
    try:
        http = collect.first_line.split()[-1]
        prometheus = prometheus_for(urllib.parse.urlsplit(http).netloc)

        def query(expr: str) -> list[Any]:
            q = urllib.parse.urlencode({"query": expr})
            return list(get_json(f"{prometheus}/api/v1/query?{q}")["data"]["result"])

        def alert() -> Any:
            alerts = get_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
            return next(
                (a for a in alerts if a["labels"]["alertname"] == "ExpectedEventMissing"), None
            )

        wait_for("the first scrape", lambda: query('up{job="eventtui"} == 1'))
        # Nothing has come since the collector started: the alert fires (a known state to start from).
        wait_for("the alert for the startup", lambda: (alert() or {}).get("state") == "firing")
        request = urllib.request.Request(
            f"{http}/events",
            data=b'{"event": "heartbeat"}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200  # an ack: committed
        sent = time.time()
        # The heartbeat resolves it...
        wait_for("the alert to resolve", lambda: alert() is None)

        # ... and then it stops arriving: Prometheus must say so in time.
        fired = wait_for(
            "the alert to fire again",
            lambda: (a := alert()) and a["state"] == "firing" and a,
            timeout=30,
        )
    finally:
        code, err = collect.stop()
    assert code == 0, err
    assert fired["labels"]["event"] == "heartbeat"
    took = _epoch(fired["activeAt"]) - sent
    assert EVERY + GRACE <= took <= EVERY + GRACE + 2 * SCRAPE, took


def _epoch(text: str) -> float:
    """Prometheus' RFC 3339 times ("2026-12-03T05:40:03.123456789Z") as epoch seconds."""
    from datetime import datetime

    head, _, frac = text.rstrip("Z").partition(".")
    at = datetime.fromisoformat(head + "+00:00").timestamp()
    return at + (float(f"0.{frac}") if frac else 0.0)
