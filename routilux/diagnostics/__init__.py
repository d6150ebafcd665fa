"""Pitfall detectors: read a runtime's trace and say what went wrong (see ``_diagnose``)."""

from ._diagnose import *  # noqa: F403 - the face, until the detectors get their modules
from ._diagnose import EXHAUSTION_PARTS, LITTLE_HEADROOM, MAX_EVENTS  # noqa: F401
from ._diagnose import __all__ as __all__
from ._diagnose import __doc__ as __doc__  # noqa: F401
