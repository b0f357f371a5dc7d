"""The web UI's files (``index.html``, ``static/``): data, not code; served by
``modelyard.server.control.ui_routes``. How the pages are built: ``README.md`` here."""
