"""HTTP API and chat page over the pipeline: ``create_app(pipeline)``."""

from api.main import create_app

__all__ = ["create_app"]
