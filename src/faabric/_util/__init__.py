"""faabric._util."""
