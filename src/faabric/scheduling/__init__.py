"""Scheduling policies: pure functions from host capacity and a request to a decision.

A policy places new apps and scale changes (`place`) and decides migrations (`migrate`).
Policies are chosen by name from `POLICIES`: per cluster, and per app (`policy_for`). Nothing
in this package does I/O, reads a clock or keeps state between calls; the planner owns all
bookkeeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from faabric.errors import ConfigError
from faabric.scheduling._binpack import BinPack, bin_pack
from faabric.scheduling._compact import Compact, compact, compact_migration
from faabric.scheduling._evacuate import evacuate
from faabric.scheduling._migrate import bin_pack_migration, cross_host_links
from faabric.scheduling._placement import (
    DoNotMigrate,
    HostSlots,
    Migration,
    Moves,
    MustFreeze,
    NoCapacity,
    Placed,
    Placement,
    Policy,
)
from faabric.scheduling._spot import Spot, spot, spot_migration
from faabric.scheduling._whole_vm import WholeVm, whole_vm

__all__ = [
    "POLICIES",
    "BinPack",
    "Compact",
    "DoNotMigrate",
    "HostSlots",
    "Migration",
    "Moves",
    "MustFreeze",
    "NoCapacity",
    "Placed",
    "Placement",
    "Policy",
    "Spot",
    "WholeVm",
    "bin_pack",
    "bin_pack_migration",
    "compact",
    "compact_migration",
    "cross_host_links",
    "evacuate",
    "get_policy",
    "policy_for",
    "spot",
    "spot_migration",
    "whole_vm",
]

POLICIES: Mapping[str, Policy] = MappingProxyType(
    {policy.name: policy for policy in (bin_pack, compact, spot, whole_vm)}
)


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


def policy_for(name: str, user: str, default: Policy) -> Policy:
    """The policy an app runs under: the one registered as `name`, or `default` (the
    cluster's) if `name` is empty, deciding for apps of `user`.

    Raises:
        ConfigError: no policy has that name.
    """
    policy = get_policy(name) if name else default
    # Only compact depends on the user; a plain class test (a runtime protocol check would
    # cost ~15 us per app).
    return policy.for_user(user) if isinstance(policy, Compact) else policy
