"""HTTP plumbing both server apps share: the error rendering, bounded request bodies, the
route index and templates, and the worker threads that run blocking handlers."""
