"""The lineage room: the metadata graph read as one — questions, OpenLineage out and in.

Every room records its relations as rows of ``lineage_edges`` when it creates them
(``modelyard.store.lineage``); this room reads them. It may import every domain room.
"""
