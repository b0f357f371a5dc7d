"""Dataset versions, profiles, pointer files and data contracts (the "data" room)."""
