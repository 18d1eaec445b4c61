"""The collector: websocket and HTTP listeners that decode, check and store events, acking after commit.

Only `server.Collector` wires the parts together; `ingest` is the one path every frame takes.
"""

from eventtui.collector.server import Collector, PortInUse

__all__ = ["Collector", "PortInUse"]
