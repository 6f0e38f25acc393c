"""Scheduling policies: pure functions from host capacity and a request to a decision.

A policy places new apps and scale changes (`place`) and decides migrations (`migrate`).
Policies are chosen by name from `POLICIES`. Nothing in this package does I/O, reads a clock
or keeps state between calls; the planner owns all bookkeeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from faabric.errors import ConfigError
from faabric.scheduling._binpack import BinPack, bin_pack
from faabric.scheduling._migrate import bin_pack_migration, cross_host_links
from faabric.scheduling._placement import (
    DoNotMigrate,
    HostSlots,
    Migration,
    Moves,
    NoCapacity,
    Placed,
    Placement,
    Policy,
)

__all__ = [
    "POLICIES",
    "BinPack",
    "DoNotMigrate",
    "HostSlots",
    "Migration",
    "Moves",
    "NoCapacity",
    "Placed",
    "Placement",
    "Policy",
    "bin_pack",
    "bin_pack_migration",
    "cross_host_links",
    "get_policy",
]

POLICIES: Mapping[str, Policy] = MappingProxyType({bin_pack.name: bin_pack})


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
