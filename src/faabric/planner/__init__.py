"""faabric.planner."""
