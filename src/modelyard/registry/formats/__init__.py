"""Saving and loading models in safe formats, one module per flavor.

``flavors.save_model`` / ``flavors.load_model`` are the entry points; each flavor module
knows one library's native format. Every saved model folder holds ``MLmodel.json`` (the
manifest: flavor, signature, input example, exact package versions, source run).
"""
