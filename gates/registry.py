"""Lazy plugin registries: a name maps to ``"module:Class"``, imported on first use.

lm-evaluation-harness registers its models this way: listing the names (config validation, the
PR planner, ``gates --help``) costs nothing, and only the plugin a run uses imports its heavy
dependencies (torch, transformers, an engine's runtime). Adding a plugin is its module and one
entry in one registry; :meth:`LazyRegistry.register` adds one from outside the package (tests,
a team's own plugins).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from gates.errors import BadInputError

T = TypeVar("T")


class LazyRegistry(Mapping[str, T], Generic[T]):
    """name -> plugin instance, built from ``"module:Class"`` the first time it is asked for."""

    def __init__(self, kind: str, entries: Mapping[str, str]) -> None:
        self.kind = kind  # what the plugins are, for messages ("engine", "load mode")
        self._entries = dict(entries)
        self._loaded: dict[str, T] = {}

    def register(self, name: str, target: str) -> None:
        """Add (or replace) a plugin by its ``"module:Class"``; the module is imported on first use."""
        if ":" not in target:
            raise ValueError(f"a {self.kind} is registered as 'module:Class', not {target!r}")
        self._entries[name] = target
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)
        self._loaded.pop(name, None)

    def target(self, name: str) -> str:
        return self._entries[name]

    def __getitem__(self, name: str) -> T:
        if name not in self._loaded:
            if name not in self._entries:
                raise KeyError(name)
            module, _, attr = self._entries[name].partition(":")
            try:
                cls = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as e:  # a plugin entry that names nothing importable
                raise BadInputError(f"{self.kind} {name!r}: cannot load {self._entries[name]!r}: {e}") from e
            self._loaded[name] = cls()
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
