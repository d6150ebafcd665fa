"""Upstream's `routilux.core.slot` import path; same objects as `routilux`."""

from routilux import Slot, SlotDataPoint, SlotQueueFullError  # noqa: F401
