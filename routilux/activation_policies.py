"""Upstream's `routilux.activation_policies` import path; same objects as `routilux`."""

from routilux import (  # noqa: F401
    all_slots_ready_policy, batch_size_policy, breakpoint_policy, custom_policy,
    immediate_policy, time_interval_policy,
)
