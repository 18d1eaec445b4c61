"""The tracking plan's limits and errors, and the one loader of its schema files.

Shared by `plan.py` (which reads the files the config names) and `plan_schema.py` (which reads the
files a "$ref" names while compiling), without either importing the other's dependencies.

May import: eventtui.config. Reads files only when asked to, never over the network.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Final

from eventtui.config import ConfigError, file_kind

MAX_ERRORS: Final = 10
MAX_ERROR_CHARS: Final = 300
# The most a schema file (named in the config or by a "$ref") may hold. Schemas are pages, not
# data; the bound is what makes a reference to something endless a clear error. README and
# config.example.toml say it.
MAX_SCHEMA_BYTES: Final = 4 * 1024 * 1024


class PlanError(ConfigError):
    """A tracking plan that cannot be used; the message names the event and the schema file.

    A ConfigError: the plan is part of the config, and the CLI reports both the same way (exit 2).
    """


class SchemaFileError(Exception):
    """A schema file that cannot be used: `reason` says why ("a FIFO, not a regular file", ...)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class SchemaFiles:
    """The one way a plan reads schema files: the config's and every "$ref"'s, each once.

    Only a regular file of at most MAX_SCHEMA_BYTES is read (opened without blocking, checked with
    fstat, read with a bound): a FIFO would hang the collector's start, /dev/zero would read until
    memory runs out. Documents (and failures) are kept by real path, so a file referred to many
    times, or again at ingest, is read once.
    """

    def __init__(self) -> None:
        self._documents: dict[str, Any] = {}

    def load(self, path: Path) -> Any:
        """The parsed document at `path`; raises SchemaFileError."""
        try:
            key = os.path.realpath(path)
        except ValueError:  # a NUL in the name (a "$ref" can hold one)
            raise SchemaFileError(path, "not a file name (it holds a NUL character)") from None
        if key not in self._documents:
            try:
                self._documents[key] = _parse(path, _read_bounded(path))
            except SchemaFileError as exc:
                self._documents[key] = exc
        document = self._documents[key]
        if isinstance(document, SchemaFileError):
            raise document
        return document


def _read_bounded(path: Path) -> bytes:
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore the flag).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SchemaFileError(path, f"cannot read it ({exc.strerror or exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SchemaFileError(path, f"{file_kind(mode)}, not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_SCHEMA_BYTES:
            chunk = os.read(fd, MAX_SCHEMA_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise SchemaFileError(path, f"cannot read it ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if size > MAX_SCHEMA_BYTES:
        raise SchemaFileError(
            path, f"over the {MAX_SCHEMA_BYTES // 2**20} MiB limit for a schema file"
        )
    return b"".join(chunks)


def _parse(path: Path, data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise SchemaFileError(path, f"not valid JSON ({exc})") from None
    except RecursionError:
        raise SchemaFileError(path, "not valid JSON (nested too deeply)") from None
