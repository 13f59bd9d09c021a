"""OpenChat backend. `uvicorn app:app` serves the ASGI application."""

from typing import Any

_app: Any = None


def __getattr__(name: str) -> Any:
    # Built on first access, so that importing `app.core...` (tests, tools) builds nothing.
    global _app
    if name == "app":
        if _app is None:
            from app.main import create_app

            _app = create_app()
        return _app
    raise AttributeError(name)
