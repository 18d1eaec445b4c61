"""KeyFooter: Textual's footer, on two rows when one is too narrow for every key.

Textual's footer drops the keys that do not fit on its one row, from the right: at 80 columns
that was "? Help" and "q Quit", the two a newcomer needs most. When the keys (and the palette
key) need more than the screen's width, this footer becomes a grid of two rows, and drops the
palette key (`ctrl+p` still works, and the help lists it) before any other.

May import: textual.
"""

from __future__ import annotations

from typing import Final

from textual import events, on
from textual.app import ComposeResult
from textual.widgets import Footer

# Cells one key takes besides its key and description: the space between them, and the margin.
_KEY_EXTRA: Final = 3
# The palette key docked at the right ("▏^p palette").
_PALETTE_CELLS: Final = 13


class KeyFooter(Footer):
    """See the module docstring."""

    DEFAULT_CSS = """
    KeyFooter.-two-rows {
        height: 2;
        layout: grid;
        grid-size: 6 2;
        grid-gutter: 0 0;
    }
    """

    @on(events.Mount)
    async def _keys_at_once(self) -> None:
        # Textual's footer shows its keys only after the focus settles and a refresh has passed
        # (~0.2 s after the first frame on a loaded machine): the app's keys are known now.
        self._bindings_ready = True
        await self.recompose()

    def compose(self) -> ComposeResult:
        yield from super().compose()
        # Footer.compose sets one column per key; on two rows, half as many.
        if self.has_class("-two-rows"):
            keys = sum(1 for _, b, _, _ in self.screen.active_bindings.values() if b.show)
            self.styles.grid_size_columns = max(1, -(-keys // 2))

    def needed_cells(self) -> int:
        """Cells the shown keys take on one row, the palette key included."""
        cells = _PALETTE_CELLS
        for _, binding, _, _ in self.screen.active_bindings.values():
            if binding.show:
                cells += len(self.app.get_key_display(binding)) + len(binding.description)
                cells += _KEY_EXTRA
        return cells

    def fit(self, width: int) -> None:
        """One row when every key fits in `width` cells, else two rows without the palette key."""
        two_rows = self.needed_cells() > width
        if two_rows != self.has_class("-two-rows"):
            self.set_class(two_rows, "-two-rows")
            self.show_command_palette = not two_rows  # recomposes

    def bindings_changed(self, screen: object) -> None:
        super().bindings_changed(screen)  # type: ignore[arg-type]
        if self.is_attached:
            self.fit(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self.fit(self.app.size.width)
