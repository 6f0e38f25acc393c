"""Cluster experiments: job traces, and their replay through the real planner core in virtual
time, to compare schedulers (whole VMs, per core, faabric with migration) on makespan, idle
slots and locality. Nothing here runs a guest, opens a socket or reads the real clock."""
