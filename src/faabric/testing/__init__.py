"""faabric.testing."""
