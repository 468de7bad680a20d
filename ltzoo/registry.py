"""One registry mechanism for every component role.

A :class:`Registry` maps a name to a factory (a class or a function). Names are
unique: registering a name twice is an error, never a silent overwrite. Looking
up an unknown name raises ``ValueError`` listing the closest registered names.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["Registry", "BACKBONES", "HEADS", "LOSSES", "SAMPLERS", "MIXERS"]


class Registry:
    """A strict name -> factory mapping for one component role.

    Args:
        role: What the registry holds, singular ("backbone", "loss", ...); used in messages.
        source: Module whose import registers the entries (e.g. "ltzoo.backbones"), imported on the
            first lookup or listing so that ``import ltzoo`` itself stays light.
    """

    def __init__(self, role: str, source: str | None = None) -> None:
        self.role = role
        # "losses", "mixers", "pretrained weights": English plural of the role for messages
        self.plural = role if role.endswith(("weights", "data")) else (
            role + "es" if role.endswith(("s", "x", "sh", "ch")) else role + "s")
        self.source = source
        self._entries: dict[str, Callable[..., Any]] = {}

    def _populate(self) -> None:
        if self.source is not None:
            source, self.source = self.source, None
            importlib.import_module(source)

    def register(self, name: str | None = None, obj: Callable[..., Any] | None = None):
        """Register ``obj`` under ``name`` (or use as a decorator).

        Args:
            name: Registry name; defaults to the object's ``__name__``.
            obj: The factory. When omitted, returns a decorator.

        Returns:
            The object itself (so it can decorate), or the decorator.

        Raises:
            ValueError: If the name is already registered or is not a valid name.
        """
        if obj is None:
            def decorator(fn: F) -> F:
                return self.register(name, fn)
            return decorator
        key = name if name is not None else getattr(obj, "__name__", None)
        if not isinstance(key, str) or not key or key != key.strip() or "." in key:
            raise ValueError(
                f"{self.role} name must be a non-empty string without '.' or surrounding spaces, got {key!r}"
            )
        if key in self._entries:
            raise ValueError(
                f"{self.role} {key!r} is already registered (by {self._entries[key]!r}); "
                "pick another name instead of overwriting it"
            )
        self._entries[key] = obj
        return obj

    def get(self, name: str) -> Callable[..., Any]:
        """Return the factory registered as ``name``.

        Raises:
            TypeError: If ``name`` is not a string.
            ValueError: If ``name`` is unknown; the message lists the closest names.
        """
        if not isinstance(name, str):
            raise TypeError(f"{self.role} name must be a string, got {type(name).__name__}")
        self._populate()
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(self._unknown_message(name)) from None

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build the component registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def list(self, include: str | Sequence[str] = "*", exclude: str | Sequence[str] | None = None) -> list[str]:
        """Sorted registered names matching ``include`` and not ``exclude`` (fnmatch patterns).

        Args:
            include: A pattern or list of patterns; a name is kept if it matches any.
            exclude: A pattern or list of patterns; a name is dropped if it matches any.

        Returns:
            The matching names, sorted.
        """
        self._populate()
        return filter_names(self._entries, include, exclude)

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=5, cutoff=0.4)
        hint = f"; closest: {', '.join(close)}" if close else ""
        return (
            f"unknown {self.role} {name!r}{hint}. "
            f"Registered {self.plural}: {', '.join(sorted(self._entries)) or '(none)'}"
        )

    def __contains__(self, name: object) -> bool:
        self._populate()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._populate()
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        self._populate()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.role!r}, {len(self)} entries)"


def filter_names(
    names: Iterable[str], include: str | Sequence[str] = "*", exclude: str | Sequence[str] | None = None
) -> list[str]:
    """Sorted ``names`` that match any ``include`` pattern and no ``exclude`` pattern."""
    includes = [include] if isinstance(include, str) else list(include)
    excludes = [] if exclude is None else [exclude] if isinstance(exclude, str) else list(exclude)
    for arg, pats in (("include", includes), ("exclude", excludes)):
        if not all(isinstance(p, str) for p in pats):
            raise TypeError(f"{arg} must be a pattern string or a list of them, got {pats!r}")
    kept = {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in includes)}
    kept = {n for n in kept if not any(fnmatch.fnmatchcase(n, p) for p in excludes)}
    return sorted(kept)


BACKBONES = Registry("backbone", source="ltzoo.backbones")
HEADS = Registry("head", source="ltzoo.heads")
LOSSES = Registry("loss", source="ltzoo.losses")
SAMPLERS = Registry("sampler", source="ltzoo.samplers")
MIXERS = Registry("mixer", source="ltzoo.mixers")
