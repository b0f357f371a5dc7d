"""Metadata store: the engine, transactions, schema and migrations every room shares."""
