"""The model registry room: formats, versions, aliases, governance and the audit trail."""
