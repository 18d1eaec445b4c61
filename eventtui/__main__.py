"""`python -m eventtui`: the same as the `eventtui` command."""

from eventtui.cli import run

run()
