"""HTTP interfaces: the control plane (``control/``), the inference app (``inference/``) and
the HTTP plumbing both share (``http/``)."""
