"""What a session's tracking looks like, and how two of them differ.

- `snapshot`: a session (or a JSON Lines export) as a small, stable file: per event name its
  count, each property path's types, whether it was always present, a small value domain, and the
  order in which names first appeared (`eventtui snapshot`).
- `diff`: two snapshots compared; what regressed and what only changed (`eventtui diff`).
- `infer`: a tracking plan (JSON Schemas and the TOML that uses them) from a snapshot
  (`eventtui plan infer`).

May import: store (the Reader), model, shapes, pii, text. Never the monitor or the TUI.
"""
