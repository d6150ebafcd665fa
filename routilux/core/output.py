"""Upstream's `routilux.core.output` import path; same objects as `routilux`."""

from routilux import (  # noqa: F401
    RoutedStdout,
    clear_job_output,
    get_job_output,
    install_routed_stdout,
    uninstall_routed_stdout,
)
from routilux._model._output import get_routed_stdout  # noqa: F401
