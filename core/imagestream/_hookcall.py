"""Calling hook implementations one by one, as pluggy would, for chained hooks.

pluggy calls every implementation of a hook with the same arguments and
collects the results. Chained hooks (``on_request``, ``on_chunk``,
``postprocess``) need each implementation to see what the previous one
returned, so the core calls them itself, in pluggy's order, passing each only
the arguments it declares (pluggy lets an implementation take a subset).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pluggy

__all__ = ["CALLED_BY_CORE", "BoundHooks", "ordered_calls"]

CALLED_BY_CORE = frozenset(
    {
        "on_request",
        "on_chunk",
        "postprocess",
        "on_result",
        "on_error",
        "register_providers",
        "register_decoders",
        "register_commands",
    }
)
"""Hooks the core calls implementation by implementation: ``wrapper=True`` is refused on them."""


def _bind(impl: pluggy.HookImpl, spec_names: frozenset[str] | None) -> Callable[..., Any]:
    names = impl.argnames
    function = impl.function
    if spec_names is not None and frozenset(names) == spec_names and _takes_keywords(function):
        # It takes every argument of the hook under the names it is called
        # with: called as it is, without a wrapper's frame per call.
        return function

    def call(**kwargs: Any) -> Any:
        return function(*[kwargs[name] for name in names])

    call.__qualname__ = f"{impl.plugin_name}.{function.__name__}"
    return call


def _takes_keywords(function: Callable[..., Any]) -> bool:
    # pluggy passes arguments by position, so a positional-only parameter
    # works there; such an implementation keeps the wrapper.
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(parameter.kind is not parameter.POSITIONAL_ONLY for parameter in parameters)


def ordered_calls(
    hook: pluggy.HookCaller, *, registration_order: bool = False
) -> list[tuple[str, Callable[..., Any]]]:
    """``(plugin name, callable)`` for each implementation, in call order.

    pluggy's call order is last registered first (``tryfirst`` before,
    ``trylast`` after); ``registration_order=True`` gives the reverse.
    """
    impls = hook.get_hookimpls()
    if not registration_order:
        impls = list(reversed(impls))
    spec_names = frozenset(hook.spec.argnames) if hook.spec is not None else None
    return [(impl.plugin_name, _bind(impl, spec_names)) for impl in impls]


class BoundHooks:
    """:func:`ordered_calls` of one plugin manager's hooks, bound once and reused.

    A run calls each chained hook's implementations; binding them costs a
    closure per implementation, which a crowd of streams would pay per run.
    Kept per hook and rebound whenever the hook's implementations are not
    the same objects as when bound (a plugin registered or removed since).
    """

    __slots__ = ("_bound", "_relay")

    def __init__(self, relay: Any) -> None:
        self._relay = relay
        self._bound: dict[
            str, tuple[list[pluggy.HookImpl], list[tuple[str, Callable[..., Any]]]]
        ] = {}

    def __call__(self, name: str) -> list[tuple[str, Callable[..., Any]]]:
        """``(plugin name, callable)`` for each implementation of hook ``name``, in call order."""
        hook: pluggy.HookCaller = getattr(self._relay, name)
        impls = hook.get_hookimpls()  # a fresh list; HookImpls compare by identity
        known = self._bound.get(name)
        if known is not None and known[0] == impls:
            return known[1]
        calls = ordered_calls(hook)
        self._bound[name] = (impls, calls)
        return calls
