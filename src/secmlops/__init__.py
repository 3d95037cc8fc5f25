"""secmlops: secure machine-learning pipelines end to end."""

__version__ = "0.1.0"
