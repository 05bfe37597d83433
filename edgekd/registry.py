"""Registries keyed by config class.

A YAML ``kind:`` selects a config class (a pydantic model whose ``kind`` field is a
``Literal``); the implementation is registered against that class, so a typo in code
fails at import and an IDE can jump from config to implementation. A duplicate
registration raises; a miss lists what exists and suggests the nearest name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, get_args

from pydantic import BaseModel

from edgekd.errors import UnknownNameError

T = TypeVar("T")
C = TypeVar("C", bound=type[BaseModel])


def kind_of(config_cls: type[BaseModel]) -> str:
    """The ``kind`` literal of a config class."""
    field = config_cls.model_fields.get("kind")
    if field is None:
        raise TypeError(f"{config_cls.__name__} has no 'kind' field; registry configs need kind: Literal[...]")
    args = get_args(field.annotation)
    if len(args) != 1 or not isinstance(args[0], str):
        raise TypeError(f"{config_cls.__name__}.kind must be a Literal with one string")
    return args[0]


class Registry(Generic[T]):
    """Maps config classes to implementations of one family (losses, tasks, runtimes...)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._by_cls: dict[type[BaseModel], T] = {}
        self._by_kind: dict[str, type[BaseModel]] = {}

    def register(self, config_cls: type[BaseModel]) -> Callable[[T], T]:
        def deco(impl: T) -> T:
            kind = kind_of(config_cls)
            if config_cls in self._by_cls or kind in self._by_kind:
                raise ValueError(f"{self.what} {kind!r} is registered twice")
            self._by_cls[config_cls] = impl
            self._by_kind[kind] = config_cls
            return impl

        return deco

    def get(self, config: BaseModel | type[BaseModel]) -> T:
        cls = config if isinstance(config, type) else type(config)
        try:
            return self._by_cls[cls]
        except KeyError:
            raise UnknownNameError(self.what, cls.__name__, [c.__name__ for c in self._by_cls]) from None

    def config_class(self, kind: str) -> type[BaseModel]:
        try:
            return self._by_kind[kind]
        except KeyError:
            raise UnknownNameError(self.what, kind, self._by_kind) from None

    def kinds(self) -> list[str]:
        return sorted(self._by_kind)

    def config_classes(self) -> list[type[BaseModel]]:
        return [self._by_kind[k] for k in self.kinds()]

    def __iter__(self) -> Iterator[tuple[type[BaseModel], T]]:
        return iter(self._by_cls.items())

    def __contains__(self, kind: Any) -> bool:
        return kind in self._by_kind
