"""OpenChat backend. `uvicorn app:app` serves the ASGI application."""

from typing import Any

_app: Any = None


# `uvicorn app:app` resolves here (PEP 562): built on first access, so importing `app.core...` builds nothing.
def __getattr__(name: str) -> Any:
    global _app
    if name == "app":
        if _app is None:
            from app.main import create_app

            _app = create_app()
        return _app
    raise AttributeError(name)
