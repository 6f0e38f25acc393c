"""faabric.worker."""
