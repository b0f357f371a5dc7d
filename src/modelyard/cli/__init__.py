"""The `modelyard` command line: a thin layer over the clients."""
