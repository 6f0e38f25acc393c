"""Binary codec for wire types: msgpack with one extension type for registered dataclasses.

A registered frozen dataclass travels as msgpack extension 1 holding `[tag, field values...]`;
enums travel as their value and tuples as arrays (decoded back into tuples). Only registered
classes can be decoded, so a peer cannot make us build arbitrary objects. This module knows
nothing about sockets; `faabric.transport` frames the bytes.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from faabric.errors import BrokenError

_EXT_DATACLASS = 1


class Codec:
    """Encodes and decodes the dataclasses it was given, and plain msgpack values."""

    def __init__(self, classes: Iterable[type[Any]]) -> None:
        self._by_tag: dict[str, type[Any]] = {}
        self._converters: dict[str, tuple[Callable[[Any], Any], ...]] = {}
        for cls in classes:
            self.register(cls)

    def register(self, cls: type[Any]) -> None:
        """Allow `cls` (a dataclass) on the wire under its class name."""
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        self._by_tag[cls.__name__] = cls
        self._converters[cls.__name__] = tuple(_converter(hints[f.name]) for f in fields)

    def encode(self, value: Any) -> bytes:
        """Serialise `value` (a registered dataclass or a plain value) to bytes."""
        return msgpack.packb(value, default=self._default, use_bin_type=True)

    def decode(self, data: bytes | memoryview) -> Any:
        """Rebuild a value from bytes made by `encode`; raises BrokenError on garbage."""
        try:
            return msgpack.unpackb(data, ext_hook=self._ext_hook, use_list=False, raw=False)
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
            raise BrokenError(f"malformed message: {exc}") from exc

    def _default(self, value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return value.value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            tag = type(value).__name__
            if self._by_tag.get(tag) is not type(value):
                raise TypeError(f"{tag} is not registered with the codec")
            fields = [getattr(value, f.name) for f in dataclasses.fields(value)]
            return msgpack.ExtType(_EXT_DATACLASS, self.encode([tag, *fields]))
        raise TypeError(f"cannot encode {type(value).__name__}")

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code != _EXT_DATACLASS:
            raise ValueError(f"unknown extension type {code}")
        tag, *values = msgpack.unpackb(data, ext_hook=self._ext_hook, use_list=False, raw=False)
        cls = self._by_tag[tag]
        converters = self._converters[tag]
        if len(values) != len(converters):
            raise ValueError(f"{tag} needs {len(converters)} fields, got {len(values)}")
        return cls(*(conv(v) for conv, v in zip(converters, values, strict=True)))


def _converter(hint: Any) -> Callable[[Any], Any]:
    """How to turn a decoded msgpack value back into the field's declared type."""
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if hint is float:
        return float
    return _identity


def _identity(value: Any) -> Any:
    return value
