"""OpenChat backend. `uvicorn app:app` serves the ASGI application."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Lazy so that `import app.core.config` does not build the whole application.
    if name == "app":
        from app.main import app

        return app
    raise AttributeError(name)
