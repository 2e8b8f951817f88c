"""The live dashboard: per model, what the autoscaler sees and why it decided what it did.

An aiohttp sub-application (``make_dashboard_app`` / ``mount_dashboard``) with a JSON API under
``/api/v1`` and a page drawn with our own SVG code; the data comes through one
``DashboardSource`` protocol (``ControllerSource`` for a cluster, ``OneMachineSource`` for
``modelscale up``), with history kept by a ``Recorder`` fed from the tuner's ticks.
"""

from .app import DEFAULT_PREFIX, make_dashboard_app, mount_dashboard
from .recorder import Decision, Recorder, ReplicaSample, TickSample
from .source import ControllerSource, DashboardSource, OneMachineSource, feed_tick
from .view import World, overview

__all__ = [
    "DEFAULT_PREFIX",
    "ControllerSource",
    "DashboardSource",
    "Decision",
    "OneMachineSource",
    "Recorder",
    "ReplicaSample",
    "TickSample",
    "World",
    "feed_tick",
    "make_dashboard_app",
    "mount_dashboard",
    "overview",
]
