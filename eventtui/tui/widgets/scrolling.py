"""Resizing a line-API scroll view without a layout of the whole screen.

Setting a `ScrollView`'s `virtual_size` asks Textual for a layout of every widget on the screen
(15-50 ms at 160x45 while events stream in; most of the UI thread's time while the stream fills at
1k events/s, benchmarks/README.md "TUI commit to screen"). When the vertical scrollbar neither
appears nor disappears, nothing else on screen moves: the scrollbar's thumb is told alone.

May import: textual.
"""

from __future__ import annotations

from textual.geometry import Size
from textual.scroll_view import ScrollView


def set_virtual_size(view: ScrollView, size: Size) -> None:
    """`view.virtual_size = size`, without a layout when the scrollbar stays as it is."""
    old = view.virtual_size
    if size == old:
        return
    viewport = view.scrollable_content_region.height
    shown = view.show_vertical_scrollbar
    if shown and min(size.height, old.height) > viewport:
        view.set_reactive(ScrollView.virtual_size, size)
        view.vertical_scrollbar.window_virtual_size = size.height
        view.vertical_scrollbar.refresh()
    elif not shown and max(size.height, old.height) <= viewport and size.width == old.width:
        view.set_reactive(ScrollView.virtual_size, size)
        view.refresh()
    else:
        view.virtual_size = size
