"""modelyard: from experiment to reliable production."""

__version__ = "0.1.0"
