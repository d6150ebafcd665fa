"""Public faces: names defined in private submodules report the public path as theirs."""

from __future__ import annotations

from typing import Any


def claim_public_names(namespace: dict[str, Any]) -> None:
    """Set ``__module__`` of each name in ``namespace["__all__"]`` defined below it.

    For a face such as ``routilux`` or ``routilux.diagnostics``: tracebacks, reprs and
    pickles then name ``routilux.Flow``, not ``routilux._model._flow.Flow`` (trio's
    ``fixup_module_metadata``). Objects whose ``__module__`` cannot be set are left alone.
    """
    face = namespace["__name__"]
    for name in namespace["__all__"]:
        obj = namespace[name]
        if getattr(obj, "__module__", "").startswith(face + "._"):
            try:
                obj.__module__ = face
            except (AttributeError, TypeError):
                pass
