"""faabric: fine-grained distribution of MPI and OpenMP programs compiled to WebAssembly."""

__version__ = "0.1.0"
