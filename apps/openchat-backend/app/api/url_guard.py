"""Refuses a URL whose path or query holds a NUL character (`%00`), with 400 on every database,
on the routes that look up what the URL names (conversations): PostgreSQL cannot compare text
with NUL (the lookup failed as a 500). Request bodies refuse it too (app/schemas.py, RequestBody)."""

from fastapi import Request

from app.core.errors import ApiError


async def refuse_nul_in_url(request: Request) -> None:
    path: str = request.scope["path"]  # percent-decoded by the server
    query = request.query_params.multi_items()
    if "\x00" in path or any("\x00" in key or "\x00" in value for key, value in query):
        raise ApiError(
            400, "nul_character", "The URL contains a NUL character (%00), which cannot be stored: remove it."
        )
