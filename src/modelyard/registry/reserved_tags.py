"""Reserved tag names of the registry room; the rule itself (``modelyard.*`` keys are
modelyard's, refused from clients) is ``tracking.system_tags``, shared by every room."""

from __future__ import annotations

from modelyard.tracking.system_tags import SYSTEM_TAG_PREFIX, is_system_tag, refuse_system_tags

__all__ = ["SYSTEM_TAG_PREFIX", "UNLOADABLE_TAG", "is_system_tag", "refuse_system_tags"]

#: Set by modelyard on a version whose files hold no saved model (accepted through the
#: MLflow API only); its value says how to fix it, and serving refuses the version at once.
UNLOADABLE_TAG = "modelyard.unloadable"
