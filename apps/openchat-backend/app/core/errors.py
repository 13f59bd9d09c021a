"""Errors as the contract wants them: `{"detail": "<readable>", "code": "<stable_code>"}`."""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

ACCOUNT_GONE = "The account for this token no longer exists."


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


def error_response(status: int, code: str, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


# Pydantic error types that are our own (PydanticCustomError) and used as the code as-is.
CUSTOM_CODES = {
    "unknown_role",
    "last_message_not_user",
    "empty_messages",
    "invalid_content",
    "invalid_type",
    "invalid_request",
    "invalid_email",
    "weak_password",
    "option_out_of_range",
    "nul_character",
    "invalid_text",
}
RANGE_TYPES = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}


# FastAPI answers a body that json.loads fails on (not UTF-8, nested too deeply) with this.
READABLE = {
    "There was an error parsing the body": (
        "invalid_json",
        "The request body could not be read as JSON: send UTF-8 text, not nested too deeply.",
    ),
    "Not Found": ("not_found", "Not found: no endpoint has this path."),
    "Method Not Allowed": ("method_not_allowed", "This endpoint does not accept this method."),
}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def validation_error_to_api_error(errors: list[dict[str, Any]]) -> ApiError:
    """The first validation problem, as a readable sentence with a stable code."""
    error = errors[0]
    kind, loc, field = error["type"], tuple(error.get("loc", ())), _field(tuple(error.get("loc", ())))
    message = str(error.get("msg", "invalid value"))
    if kind == "json_invalid":
        return ApiError(
            400, "invalid_json", f"The request body is not valid JSON ({error.get('ctx', {}).get('error', message)})."
        )
    if kind in CUSTOM_CODES:
        return ApiError(400, kind, message)
    if kind == "missing":
        return ApiError(400, "missing_field", f"Field '{field}' is required.")
    if kind == "too_short" and field == "messages":
        return ApiError(400, "empty_messages", "Field 'messages' must contain at least one message.")
    if kind in RANGE_TYPES and loc[:2] == ("body", "data"):
        return ApiError(400, "option_out_of_range", f"Option '{field}': {message}.")
    if field == "body":
        return ApiError(400, "invalid_body", "The request body must be a JSON object.")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return ApiError(400, "invalid_type", f"Field '{field}': {message}.")
    return ApiError(400, "invalid_request", f"Field '{field}': {message}.")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # The contract says 400 for bad input, not FastAPI's default 422.
        api_error = validation_error_to_api_error(list(exc.errors()))
        return error_response(api_error.status, api_error.code, api_error.detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        # Starlette's and FastAPI's own messages, said so that the client knows what to change.
        if detail in READABLE:
            code, detail = READABLE[detail]
            return error_response(exc.status_code, code, detail, exc.headers)
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), detail, exc.headers)

    @app.exception_handler(PoolTimeoutError)
    async def _database_busy(_request: Request, _exc: PoolTimeoutError) -> JSONResponse:
        # Every database connection stayed in use for OPENCHAT_DB_POOL_TIMEOUT_S: overload, not a bug.
        return error_response(
            503,
            "database_busy",
            "The server is too busy to reach its database right now; retry in a few seconds. "
            "(Operators: raise OPENCHAT_DB_POOL_SIZE / OPENCHAT_DB_MAX_OVERFLOW.)",
            {"Retry-After": "5"},
        )

    @app.exception_handler(OperationalError)
    async def _database_unavailable(_request: Request, _exc: OperationalError) -> JSONResponse:
        # The database is down or restarting (connection refused or lost), or SQLite is locked: the
        # request may succeed once it is back. Pooled connections are checked before use (pre-ping).
        return error_response(
            503,
            "database_unavailable",
            "The database is unavailable right now; retry in a few seconds.",
            {"Retry-After": "5"},
        )
