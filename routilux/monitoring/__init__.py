"""compat: the docs import `FlowRegistry` from here (upstream 0.10.0 ships no such module)."""
