"""Plugin discovery and loading: one manager, entry points loaded lazily and once.

Each entry point of the ``imagestream`` group is loaded on its own: a plugin
that fails to import, registers a misspelled hook or raises while registering
is reported by name (a warning, and ``imagestream plugins``) and left out; it
never breaks the library or the CLI. Plugin authors set
``IMAGESTREAM_STRICT_PLUGINS=1`` to turn those reports into errors.

Environment:

``IMAGESTREAM_LOAD_PLUGINS``
    Comma-separated allow list of entry point names (or distribution names)
    to load. Set but empty: load no installed plugin at all.
``IMAGESTREAM_DISABLE_PLUGINS``
    Comma-separated plugins not to register, built-ins included
    (``analytics``, ``validation``, ``filesystem``, ``fake_streaming``,
    ``native``, ``cache``, ``log``) or entry point names.
``IMAGESTREAM_STRICT_PLUGINS``
    ``1`` to raise :class:`~imagestream.PluginLoadError` instead of warning.
``IMAGESTREAM_TRACE_PLUGINS``
    ``1`` to print every hook call to stderr.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable
from typing import Any

import attrs
import pluggy

from . import hookspecs
from ._hookcall import CALLED_BY_CORE
from ._registry import Registry
from .errors import PluginLoadError

__all__ = [
    "BUILTIN_HOOKS",
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginManager",
    "PluginWarning",
    "get_plugin_manager",
    "reset_plugin_manager",
]

ENTRY_POINT_GROUP = "imagestream"

BUILTIN_PLUGINS: dict[str, str] = {
    "native": "imagestream._builtins.native",
    "fake_streaming": "imagestream._builtins.fake_streaming",
    "validation": "imagestream._builtins.validation:Validation.from_env",
    "analytics": "imagestream._builtins.analytics:Analytics",
    "filesystem": "imagestream._builtins.filesystem:FilesystemSaver",
    "cache": "imagestream._builtins.cache:GenerationCache",
    "log": "imagestream._builtins.log:GenerationLog",
}
"""Built-in plugins: ordinary plugins, registered first, so installed ones win.

A value is a module, or ``module:factory`` for a plugin object built by calling
``factory()``.
"""

BUILTIN_HOOKS: dict[str, tuple[str, ...]] = {
    "native": ("generate", "stream"),
    "fake_streaming": ("stream",),
    "validation": ("on_chunk", "on_error", "on_request", "on_result", "stream"),
    "analytics": ("on_chunk", "on_error", "on_request", "on_result"),
    "filesystem": ("save",),
    "cache": ("on_result", "stream"),
    "log": ("on_error", "on_result"),
}
"""The hooks each built-in implements, sorted: ``imagestream plugins`` lists the
built-ins from here without importing them (tests/test_startup_rules.py checks
that they are what the built-ins register)."""

CORE_PLUGINS = ("native", "fake_streaming", "cache", "log")
"""The built-ins a :class:`~imagestream.Pipeline` always has: how providers run, the
generation cache (idle unless a run passes ``cache=True``) and the generation log
(idle unless a run passes ``log=True``)."""


class PluginWarning(UserWarning):
    """A plugin failed to load and was left out."""


@attrs.frozen
class PluginInfo:
    """What ``imagestream plugins`` reports about one plugin.

    Attributes:
        name: Entry point name (or built-in name).
        version: Version of the distribution that provides it.
        distribution: Name of that distribution.
        hooks: The hooks it implements.
        status: ``"loaded"``, ``"failed"`` or ``"disabled"``.
        error: Why it failed, when it did.
        builtin: True for plugins that ship with the core.
    """

    name: str
    version: str | None
    distribution: str | None
    hooks: tuple[str, ...] = ()
    status: str = "loaded"
    error: str | None = None
    builtin: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return attrs.asdict(self)


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _describe_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _refuse_wrappers(manager: pluggy.PluginManager, plugin: object) -> None:
    # The core calls these hooks implementation by implementation (see
    # _hookcall), where a wrapper would silently misbehave: refuse it up front.
    for caller in manager.get_hookcallers(plugin) or ():
        if caller.name not in CALLED_BY_CORE:
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and (impl.wrapper or impl.hookwrapper):
                raise pluggy.PluginValidationError(
                    plugin,
                    f"hook {caller.name!r} cannot be a wrapper: the core chains its "
                    "implementations itself (wrappers work on stream, generate and save)",
                )


def load_builtin(name: str) -> object:
    """Import built-in plugin ``name`` and return the plugin object."""
    module_name, _, factory = BUILTIN_PLUGINS[name].partition(":")
    target: Any = importlib.import_module(module_name)
    if not factory:
        return target
    for attr in factory.split("."):
        target = getattr(target, attr)
    return target()


class PluginManager(pluggy.PluginManager):
    """pluggy's manager with imagestream's hook specs, failure reports and a registry.

    Args:
        strict: Raise on any plugin failure instead of warning.
    """

    def __init__(self, *, strict: bool = False) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.strict = strict
        self.infos: dict[str, PluginInfo] = {}
        self.registry = Registry(self)
        self._deferred: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        if _truthy("IMAGESTREAM_TRACE_PLUGINS"):
            self.trace.root.setwriter(sys.stderr.write)
            self.enable_tracing()

    # -- registration ------------------------------------------------------

    def add_plugin(
        self,
        plugin: object,
        name: str,
        *,
        version: str | None = None,
        distribution: str | None = None,
        builtin: bool = False,
    ) -> bool:
        """Register ``plugin`` under ``name``, checking its hook names.

        Returns False (after a warning, or raising in strict mode) when the
        plugin is invalid: a hook name that no spec declares, or arguments a
        spec does not have.
        """
        try:
            self.register(plugin, name=name)
            # Catches misspelled hook names, which pluggy otherwise ignores.
            self.check_pending()
            _refuse_wrappers(self, plugin)
        except Exception as exc:
            if self.get_plugin(name) is plugin:
                self.unregister(plugin, name=name)
            self._failed(name, exc, version=version, distribution=distribution, builtin=builtin)
            return False
        self.infos[name] = PluginInfo(
            name=name,
            version=version,
            distribution=distribution,
            hooks=tuple(sorted(h.name for h in self.get_hookcallers(plugin) or ())),
            builtin=builtin,
        )
        self.registry.invalidate()
        return True

    def _failed(
        self,
        name: str,
        exc: BaseException,
        *,
        version: str | None = None,
        distribution: str | None = None,
        builtin: bool = False,
    ) -> None:
        message = _describe_exception(exc)
        self.infos[name] = PluginInfo(
            name=name,
            version=version,
            distribution=distribution,
            status="failed",
            error=message,
            builtin=builtin,
        )
        if self.strict:
            raise PluginLoadError(name, message) from exc
        warnings.warn(
            f"imagestream plugin {name!r} failed to load and was skipped: {message}",
            PluginWarning,
            stacklevel=3,
        )

    def report_failure(self, name: str, exc: BaseException) -> None:
        """Record that plugin ``name`` failed after loading (e.g. while registering)."""
        info = self.infos.get(name)
        self._failed(
            name,
            exc,
            version=info.version if info else None,
            distribution=info.distribution if info else None,
            builtin=info.builtin if info else False,
        )

    def add_builtins(
        self, names: Iterable[str] = BUILTIN_PLUGINS, disabled: Iterable[str] = ()
    ) -> None:
        """Register built-in plugins by name, except ``disabled`` ones."""
        skip = set(disabled)
        for name in names:
            if name in skip:
                self._disabled(name, builtin=True)
                continue
            self.add_plugin(
                load_builtin(name),
                name,
                version=_core_version(),
                distribution="imagestream",
                builtin=True,
            )

    def defer_builtins(
        self, names: Iterable[str] = BUILTIN_PLUGINS, disabled: Iterable[str] = ()
    ) -> None:
        """Leave the built-ins out for now: :meth:`add_deferred_builtins` adds them.

        Call it first, as :meth:`add_builtins` would be.
        """
        self._deferred = (tuple(names), tuple(disabled))

    @property
    def builtins_deferred(self) -> bool:
        """True while built-ins left out by :meth:`defer_builtins` are still to be added."""
        return self._deferred is not None

    def add_deferred_builtins(self) -> None:
        """Add the built-ins :meth:`defer_builtins` left out, as if they had been added first.

        pluggy calls the last registered implementation first, and built-ins
        are registered before installed plugins so that those win: the
        plugins registered since are taken out and registered again after
        the built-ins, in their order, which gives the order (and the
        ``imagestream plugins`` listing) a manager made with its built-ins has.
        """
        if self._deferred is None:
            return
        names, disabled = self._deferred
        self._deferred = None
        later = [(name, plugin) for name, plugin in self.list_name_plugin() if plugin is not None]
        for name, plugin in later:
            self.unregister(plugin, name=name)
        seen = self.infos
        self.infos = {}
        self.add_builtins(names, disabled)
        for name, plugin in later:
            self.register(plugin, name=name)
        self.infos.update((name, info) for name, info in seen.items() if name not in self.infos)
        self.registry.invalidate()

    def _disabled(
        self, name: str, *, builtin: bool, version: str | None = None, dist: str | None = None
    ) -> None:
        self.infos[name] = PluginInfo(
            name=name, version=version, distribution=dist, status="disabled", builtin=builtin
        )

    def load_entry_points(
        self,
        allow: list[str] | None = None,
        disabled: Iterable[str] = (),
    ) -> None:
        """Load every ``imagestream`` entry point, each on its own.

        Args:
            allow: Only these entry point or distribution names (``None``: all).
            disabled: Names to skip.
        """
        skip = set(disabled)
        for ep in find_entry_points(ENTRY_POINT_GROUP):
            if self.get_plugin(ep.name) is not None or ep.name in self.infos:
                continue  # the same entry point seen twice on sys.path
            dist_name, version = ep.distribution()
            if allow is not None and ep.name not in allow and dist_name not in allow:
                continue
            if ep.name in skip:
                self._disabled(ep.name, builtin=False, version=version, dist=dist_name)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self._failed(ep.name, exc, version=version, distribution=dist_name)
                continue
            self.add_plugin(plugin, ep.name, version=version, distribution=dist_name)

    def plugin_infos(self) -> list[PluginInfo]:
        """Every plugin seen: loaded, failed and disabled."""
        return list(self.infos.values())

    def listed_plugin_infos(self) -> list[PluginInfo]:
        """Every plugin, as :meth:`plugin_infos` lists them once the built-ins are added.

        Built-ins still left out by :meth:`defer_builtins` are listed as
        :meth:`add_deferred_builtins` would add them, first, with the hooks
        :data:`BUILTIN_HOOKS` says, without importing them: what
        ``imagestream plugins`` prints.
        """
        if self._deferred is None:
            return self.plugin_infos()
        names, disabled = self._deferred
        if not set(names) <= set(BUILTIN_HOOKS):
            self.add_deferred_builtins()  # one whose hooks are not known: ask it
            return self.plugin_infos()
        skip = set(disabled)
        listed: dict[str, PluginInfo] = {}
        for name in names:
            if name in skip:
                listed[name] = PluginInfo(name, None, None, status="disabled", builtin=True)
            else:
                listed[name] = PluginInfo(
                    name, _core_version(), "imagestream", BUILTIN_HOOKS[name], builtin=True
                )
        listed.update((name, info) for name, info in self.infos.items() if name not in listed)
        return list(listed.values())


_manager: PluginManager | None = None
_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide manager, created and loaded on first use."""
    global _manager
    manager = _manager
    if manager is None or manager.builtins_deferred:
        with _lock:
            if _manager is None:
                _manager = _build_global_manager()
            elif _manager.builtins_deferred:
                _manager.add_deferred_builtins()
            manager = _manager
    return manager


def listing_plugin_manager() -> PluginManager:
    """The process-wide manager, for listing what plugins register: the built-ins may be missing.

    ``imagestream providers``, ``imagestream plugins`` and ``--help`` need
    the installed plugins' registrations only, not the built-in plugins,
    which import the run machinery (``plugins`` lists them with
    :meth:`PluginManager.listed_plugin_infos`): when nothing made the
    manager yet, it is made without them, and :func:`get_plugin_manager`
    adds them, first in hook order, when anything else needs the manager.
    """
    global _manager
    if _manager is None:
        with _lock:
            if _manager is None:
                _manager = _build_global_manager(builtins=False)
    return _manager


def _build_global_manager(*, builtins: bool = True) -> PluginManager:
    manager = PluginManager(strict=_truthy("IMAGESTREAM_STRICT_PLUGINS"))
    disabled = _env_list("IMAGESTREAM_DISABLE_PLUGINS") or []
    if builtins:
        manager.add_builtins(disabled=disabled)
    else:
        manager.defer_builtins(disabled=disabled)
    manager.load_entry_points(allow=_env_list("IMAGESTREAM_LOAD_PLUGINS"), disabled=disabled)
    return manager


def reset_plugin_manager() -> None:
    """Forget the global manager; the next use loads plugins again (tests, notebooks)."""
    global _manager
    with _lock:
        _manager = None


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object or module with the global manager, at run time.

    Returns the name it was registered under.

    Raises:
        PluginLoadError: The plugin is invalid (a misspelled hook, ...).
    """
    manager = get_plugin_manager()
    plugin_name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin)}"
    strict, manager.strict = manager.strict, True
    try:
        manager.add_plugin(plugin, plugin_name)
    finally:
        manager.strict = strict
    return plugin_name


def unregister_plugin(name: str) -> None:
    """Remove a plugin from the global manager by name (a no-op if absent)."""
    manager = get_plugin_manager()
    plugin = manager.get_plugin(name)
    if plugin is not None:
        manager.unregister(plugin, name=name)
    manager.infos.pop(name, None)
    manager.registry.invalidate()


# -- finding entry points ---------------------------------------------------
#
# What importlib.metadata does for entry points, without importing it: it
# imports email, zipfile, csv and pathlib, a third of what listing providers
# costs. Distributions are the *.dist-info and *.egg-info directories of the
# sys.path directories, the first of a name winning, as importlib.metadata
# has it; a sys.path entry that is not a directory (a zip file) is left to
# importlib.metadata.

_INFO_SUFFIXES = (".dist-info", ".egg-info")
_ENTRY_POINT = re.compile(r"^(?P<module>[\w.]+)\s*(?::\s*(?P<attr>[\w.]+)\s*)?(?:\[.*\]\s*)?$")


class EntryPoint:
    """One entry point of a group: its name, what it names, and the distribution's name and version."""

    def __init__(self, name: str, value: str, info: str | None = None, dist: Any = None) -> None:
        self.name = name
        self.value = value
        self._info = info
        self._dist = dist

    def distribution(self) -> tuple[str | None, str | None]:
        """The name and version of the distribution that declares it (read now)."""
        if self._dist is not None:
            return self._dist.name, self._dist.version
        if self._info is None:
            return None, None
        headers = "METADATA" if self._info.lower().endswith(".dist-info") else "PKG-INFO"
        fields = _headers(os.path.join(self._info, headers), ("Name", "Version"))
        return fields.get("Name"), fields.get("Version")

    def load(self) -> Any:
        """Import the module and return the object the entry point names."""
        match = _ENTRY_POINT.match(self.value.strip())
        if match is None:
            raise ValueError(f"entry point {self.name!r}: cannot read {self.value!r}")
        target: Any = importlib.import_module(match["module"])
        for attr in match["attr"].split(".") if match["attr"] else ():
            target = getattr(target, attr)
        return target


def find_entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group``, in ``sys.path`` order, as importlib.metadata finds them."""
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for entry in sys.path:
        root = entry or "."
        try:
            children = os.listdir(root)
        except OSError:
            if os.path.isfile(root):
                found += _zipped_entry_points(root, group, seen)
            continue
        for child in children:
            low = child.lower()
            if not low.endswith(_INFO_SUFFIXES):
                continue
            key = re.sub(r"[-_.]+", "_", low.rpartition(".")[0].partition("-")[0])
            if key in seen:
                continue
            seen.add(key)
            info = os.path.join(root, child)
            text = _read(os.path.join(info, "entry_points.txt"))
            found += [EntryPoint(name, value, info) for name, value in _section(text, group)]
    return found


def _zipped_entry_points(path: str, group: str, seen: set[str]) -> list[EntryPoint]:
    from importlib_metadata import distributions

    found = []
    for dist in distributions(path=[path]):
        key = re.sub(r"[-_.]+", "_", (dist.name or "").lower())
        if key in seen:
            continue
        seen.add(key)
        found += [
            EntryPoint(ep.name, ep.value, dist=dist) for ep in dist.entry_points.select(group=group)
        ]
    return found


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return ""


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """The ``name = value`` lines of section ``[group]`` of an ``entry_points.txt``."""
    found = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
        elif inside and "=" in line:
            name, _, value = line.partition("=")
            found.append((name.strip(), value.strip()))
    return found


def _headers(path: str, wanted: tuple[str, ...]) -> dict[str, str]:
    """The first value of each ``wanted`` field in the header of a METADATA or PKG-INFO file."""
    fields: dict[str, str] = {}
    for line in _read(path).splitlines():
        if not line.strip():
            break  # the body (the long description) starts here
        name, colon, value = line.partition(":")
        if colon and name in wanted and name not in fields:
            fields[name] = value.strip()
    return fields


def _core_version() -> str:
    from . import __version__

    return __version__
