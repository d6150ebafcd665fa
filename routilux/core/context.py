"""Upstream's `routilux.core.context` import path; same objects as `routilux`."""

from routilux import JobContext, get_current_job, get_current_job_id, get_current_worker_state, set_current_job, set_current_worker_state  # noqa: F401
