"""How a logic function is called: mapping style or per-slot style (api.md §3).

The signature is inspected once per (routine, logic) and turned into a small caller, so
the hot path does no introspection.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

Caller = Callable[[dict[str, list[Any]], Any, Any], Any]


_dict_getitem = dict.__getitem__


class SlotData(dict):
    """Slot name -> items for one activation; with one slot, also that slot's item list."""

    __slots__ = ("_single",)

    def __init__(self, data: dict[str, list[Any]], single: str | None) -> None:
        super().__init__(data)
        self._single = single

    def _items(self) -> list[Any]:
        return dict.__getitem__(self, self._single)

    def __getitem__(self, key: Any) -> Any:
        # A slot name first, in one C call (the common case, once or more per activation);
        # an int or a slice indexes the single slot's items. Slot names are strings, so an
        # int is never a key, and a slice is not hashable (TypeError).
        try:
            return _dict_getitem(self, key)
        except (KeyError, TypeError):
            if self._single is None or not isinstance(key, (int, slice)):
                raise
        return self._items()[key]  # outside the handler: an IndexError chains nothing

    def __len__(self) -> int:
        if self._single is not None:
            return len(self._items())
        return dict.__len__(self)

    def __iter__(self):
        if self._single is not None:
            return iter(self._items())
        return dict.__iter__(self)

    def __bool__(self) -> bool:
        return any(dict.values(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list) and self._single is not None:
            return self._items() == other
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SlotData({dict.__repr__(self)})"


_dict_new = dict.__new__
_dict_update = dict.update


def _slot_data(slot_lists: dict[str, list[Any]], single: str | None) -> SlotData:
    """``SlotData(slot_lists, single)`` from C calls, without the Python ``__init__`` frame
    and its ``super()`` call (once per activation on the hot path): the same object."""
    sd = _dict_new(SlotData)
    _dict_update(sd, slot_lists)
    sd._single = single
    return sd


def make_caller(fn: Callable[..., Any], slot_names: list[str]) -> Caller:
    """Build ``call(slot_lists, policy_message, worker_state)`` for ``fn``."""
    n = len(slot_names)
    single = slot_names[0] if n == 1 else None
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None

    positional: list[str] = []
    var_positional = var_keyword = False
    if sig is not None:
        for p in sig.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                positional.append(p.name)
            elif p.kind == p.VAR_POSITIONAL:
                var_positional = True
            elif p.kind == p.VAR_KEYWORD:
                var_keyword = True
    npos = len(positional)

    per_slot: bool
    if "policy_message" in positional:
        idx = positional.index("policy_message")
        per_slot = idx == n and n >= 2 and idx != 1
    else:
        per_slot = (
            var_positional
            or (npos == n and n >= 2 and var_keyword)
            or (npos == n + 2 and npos >= 4)
        )

    lead = n if per_slot else 1
    room = max(npos - lead, 0) if not var_positional else 2
    pass_msg_pos = room >= 1
    pass_ws_pos = room >= 2
    kw_msg = not pass_msg_pos and var_keyword
    kw_ws = not pass_ws_pos and var_keyword

    if per_slot:
        names = tuple(slot_names)

        def call(slot_lists: dict[str, list[Any]], msg: Any, ws: Any) -> Any:
            args: list[Any] = [slot_lists[name] for name in names]
            kwargs: dict[str, Any] = {}
            if pass_msg_pos:
                args.append(msg)
            elif kw_msg:
                kwargs["policy_message"] = msg
            if pass_ws_pos:
                args.append(ws)
            elif kw_ws:
                kwargs["worker_state"] = ws
            return fn(*args, **kwargs)
    elif pass_ws_pos:  # the common (slot_data, policy_message, worker_state) shape

        def call(slot_lists: dict[str, list[Any]], msg: Any, ws: Any) -> Any:
            sd = _dict_new(SlotData)  # _slot_data inlined: the hottest shape
            _dict_update(sd, slot_lists)
            sd._single = single
            return fn(sd, msg, ws)
    else:

        def call(slot_lists: dict[str, list[Any]], msg: Any, ws: Any) -> Any:
            args: list[Any] = [_slot_data(slot_lists, single)]
            kwargs: dict[str, Any] = {}
            if pass_msg_pos:
                args.append(msg)
            elif kw_msg:
                kwargs["policy_message"] = msg
            if kw_ws:
                kwargs["worker_state"] = ws
            elif not var_keyword and sig is not None and npos < 2:
                # Nothing fits: call as the runtime would, so TypeError names the logic.
                args.append(msg)
                args.append(ws)
            return fn(*args, **kwargs)

    return call
