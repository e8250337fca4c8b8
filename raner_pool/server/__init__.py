"""The HTTP layer: a thin FastAPI app over the library's registry of pools. The core never imports it."""

from raner_pool.server.app import create_app
from raner_pool.server.main import serve

__all__ = ["create_app", "serve"]
