"""Online stores: the latest feature values per entity, for low-latency reads."""
