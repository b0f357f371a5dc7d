"""Users, roles and API tokens: who may use a shared ``modelyard server``, and how much.

The embedded local mode is single-user and never consults this room; ``modelyard server
--auth`` does, on every request. Tokens are stored as SHA-256 digests only, so a leaked
database does not leak working credentials. See ``service.AuthService``.
"""
