"""Placement policies: pure functions from host capacity and a request to a decision.

Policies are chosen by name from `POLICIES`. Nothing in this package does I/O, reads a clock
or keeps state between calls; the planner owns all bookkeeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from faabric.errors import ConfigError
from faabric.scheduling._binpack import bin_pack
from faabric.scheduling._placement import HostSlots, NoCapacity, Placed, Placement, Policy

__all__ = [
    "POLICIES",
    "HostSlots",
    "NoCapacity",
    "Placed",
    "Placement",
    "Policy",
    "bin_pack",
    "get_policy",
]

POLICIES: Mapping[str, Policy] = MappingProxyType({"bin-pack": bin_pack})


def get_policy(name: str) -> Policy:
    """The policy registered under `name`.

    Raises:
        ConfigError: no policy has that name.
    """
    try:
        return POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise ConfigError(f"unknown scheduling policy {name!r} (known: {known})") from None
