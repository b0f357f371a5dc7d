"""HTTP plumbing both server apps share: the error rendering, bounded request bodies, the
route index and templates, the token-authentication middleware, and the worker threads
that run blocking handlers."""
