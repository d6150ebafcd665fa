"""The engine: how a flow runs (pool threads, job table, monitor, offload). Private: routilux re-exports the public names."""
