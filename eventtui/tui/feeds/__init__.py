"""Feeds: where the app's events come from (see feeds/base.py). The app is given one.

`StoreFeed` tails a store (watch, demo, open); `ReplayFeed` plays a recorded session on a virtual
clock (replay); `StaticFeed` posts a fixed list (previews, tests). They post the same messages, so
the app cannot tell live from replay.
"""

from eventtui.tui.feeds.base import Feed, ReadingFeed, slim
from eventtui.tui.feeds.replay import SEEK_SECONDS, Playback, ReplayFeed
from eventtui.tui.feeds.static import StaticFeed
from eventtui.tui.feeds.store import StoreFeed

__all__ = [
    "SEEK_SECONDS",
    "Feed",
    "Playback",
    "ReadingFeed",
    "ReplayFeed",
    "StaticFeed",
    "StoreFeed",
    "slim",
]
