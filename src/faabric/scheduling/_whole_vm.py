"""The whole-VM policy: allocation as a batch scheduler of VMs does it.

An app gets ceil(size / slots) hosts that run nothing else, filled in order (most slots
first, then by name), and never moves or grows; the slots it leaves empty on its hosts stay
idle. It is the baseline faabric's experiments compare against, and a policy a cluster may
run for apps that must not share hosts. Pure: it must not do I/O, read a clock or keep state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from faabric.scheduling._placement import (
    NOT_RUNNING,
    DoNotMigrate,
    HostSlots,
    Migration,
    NoCapacity,
    Placed,
    Placement,
)


@dataclass(frozen=True, slots=True)
class WholeVm:
    """Whole hosts per app (see the module doc): only empty hosts, most slots first, then by
    name; never a scale change or a migration."""

    name: str = "whole-vm"

    def place(
        self,
        hosts: Sequence[HostSlots],
        size: int,
        running: Mapping[str, int] = NOT_RUNNING,
    ) -> Placement:
        """Fill empty hosts in order until `size` granules have one."""
        empty = [h for h in hosts if h.used == 0 and not h.evicting]
        free = sum(h.slots for h in empty)
        if running or free < size:
            return NoCapacity(requested=size, free=0 if running else free)
        empty.sort(key=lambda h: (-h.slots, h.name))
        placed: list[str] = []
        for host in empty:
            placed.extend([host.name] * min(host.slots, size - len(placed)))
            if len(placed) == size:
                break
        return Placed(hosts=tuple(placed))

    def migrate(self, hosts: Sequence[HostSlots], placement: Sequence[str]) -> Migration:
        """Never: a VM-granular job stays where it started."""
        return DoNotMigrate()


whole_vm = WholeVm()
