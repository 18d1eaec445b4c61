"""`python -m eventtui`: the same as the `eventtui` command."""

from eventtui.cli import run

if __name__ == "__main__":
    run()
