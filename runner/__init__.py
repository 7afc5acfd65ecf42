"""pipe: declarative YAML pipelines run step by step in Docker sandboxes."""

__version__ = "0.1.0"
