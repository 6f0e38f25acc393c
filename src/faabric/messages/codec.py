"""Binary codec for wire types: msgpack with one extension type for registered dataclasses.

A registered frozen dataclass travels as msgpack extension 1 holding `[tag, field values...]`;
enums travel as their value and tuples as arrays (decoded back into tuples). Only registered
classes can be decoded, so a peer cannot make us build arbitrary objects. This module knows
nothing about sockets; `faabric.transport` frames the bytes.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import typing
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from faabric.errors import BrokenError

_EXT_DATACLASS = 1
_BUF_SIZE = 1024
MAX_NESTING = 32  # dataclasses inside dataclasses: each level costs C stack while decoding

_Conversion = tuple[int, Callable[[Any], Any]]


class Codec:
    """Encodes and decodes the dataclasses it was given, and plain msgpack values."""

    def __init__(self, classes: Iterable[type[Any]]) -> None:
        self._by_tag: dict[str, type[Any]] = {}
        # tag -> (class, number of fields, (position, converter) of fields to convert)
        self._decoders: dict[str, tuple[type[Any], int, tuple[_Conversion, ...]]] = {}
        self._field_names: dict[type[Any], tuple[str, ...]] = {}
        for cls in classes:
            self.register(cls)

    def register(self, cls: type[Any]) -> None:
        """Allow `cls` (a dataclass) on the wire under its class name."""
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        replaced = self._by_tag.get(cls.__name__)
        if replaced is not None:  # one class per name: the older one may no longer be sent
            self._field_names.pop(replaced, None)
        self._by_tag[cls.__name__] = cls
        converters = [_converter(hints[f.name]) for f in fields]
        conversions = tuple((i, c) for i, c in enumerate(converters) if c is not _identity)
        self._decoders[cls.__name__] = (cls, len(fields), conversions)
        self._field_names[cls] = tuple(f.name for f in fields)

    def encode(self, value: Any) -> bytes:
        """Serialise `value` (a registered dataclass or a plain value) to bytes."""
        # A small initial buffer: msgpack's default (256 KiB) is mmap'ed afresh for every
        # nested dataclass, which made encoding ~20x slower (measured: 6 us vs 0.3 us each).
        packer = msgpack.Packer(  # type: ignore[call-arg]  # the stubs predate buf_size
            default=self._default, use_bin_type=True, buf_size=_BUF_SIZE
        )
        return packer.pack(value)

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Rebuild a value from bytes made by `encode`; raises BrokenError, and nothing else,
        on anything else (whatever goes wrong while decoding comes from the bytes: a bad
        msgpack value, an unknown tag, a wrong field count, a dataclass refusing its fields,
        dataclasses nested deeper than MAX_NESTING)."""
        try:
            return self._unpack(data, 0)
        except Exception as exc:  # decoding has no side effects: any failure is the input's
            raise BrokenError(f"malformed message: {type(exc).__name__}: {exc}") from exc

    def _default(self, value: Any) -> Any:
        cls = type(value)
        names = self._field_names.get(cls)
        if names is not None:
            fields = [cls.__name__, *(getattr(value, name) for name in names)]
            return msgpack.ExtType(_EXT_DATACLASS, self.encode(fields))
        if isinstance(value, enum.Enum):
            return value.value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            raise TypeError(f"{cls.__name__} is not registered with the codec")
        raise TypeError(f"cannot encode {cls.__name__}")

    def _unpack(self, data: bytes | bytearray | memoryview, depth: int) -> Any:
        hook = functools.partial(self._ext_hook, depth=depth + 1)
        return msgpack.unpackb(data, ext_hook=hook, use_list=False, raw=False)

    def _ext_hook(self, code: int, data: bytes, depth: int) -> Any:
        if code != _EXT_DATACLASS:
            raise ValueError(f"unknown extension type {code}")
        if depth > MAX_NESTING:
            raise ValueError(f"dataclasses nest deeper than {MAX_NESTING} levels")
        tag, *values = self._unpack(data, depth)
        cls, count, conversions = self._decoders[tag]
        if len(values) != count:
            raise ValueError(f"{tag} needs {count} fields, got {len(values)}")
        for position, convert in conversions:
            values[position] = convert(values[position])
        return cls(*values)


def _converter(hint: Any) -> Callable[[Any], Any]:
    """How to turn a decoded msgpack value back into the field's declared type."""
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if hint is float:
        return float
    return _identity


def _identity(value: Any) -> Any:
    return value
