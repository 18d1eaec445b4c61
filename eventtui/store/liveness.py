"""Whether a session that has not ended is still being written, or its collector is gone.

A session's row is ended (`ended_at`) by its writer when it stops. One that is not ended is either
being written right now or was left open by a collector that was killed. The writer records, in
the session's `meta`, the process and machine that write it (`live_writer_mark`); `writer_alive`
then tells the two apart. A session without that record (written before it existed) or from
another machine is taken as alive: refusing to delete a dead one is a nuisance, deleting a live
one breaks every write after it.

May import: os, socket.
"""

from __future__ import annotations

import os
import socket
from typing import Any


def live_writer_mark() -> dict[str, Any]:
    """The `meta` keys that name the process writing a session (the collector's, not the writer
    child's: a restarted child continues the same session under the same parent)."""
    return {"pid": os.getpid(), "hostname": socket.gethostname()}


def writer_alive(meta: dict[str, Any]) -> bool:
    """Is the process named in an unended session's `meta` still running (see the module doc)?"""
    pid, hostname = meta.get("pid"), meta.get("hostname")
    if not isinstance(pid, int) or hostname != socket.gethostname():
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that id
        return True
    return True
