"""compat: `routilux.monitoring.flow_registry.FlowRegistry`; the same object as `routilux.FlowRegistry`."""

from routilux import FlowRegistry, get_flow_registry  # noqa: F401
