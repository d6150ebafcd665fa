"""The model: what a flow is (routines, slots, events, flows, jobs, worker state, policies). Never imports the engine."""
