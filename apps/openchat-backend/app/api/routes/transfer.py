"""Export a conversation or all of them (OpenChat JSON, Markdown) and import an export file
(OpenChat JSON, ChatGPT's conversations.json, Open WebUI's chat export)."""

import re
import tempfile
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from app import crud
from app.api.deps import CurrentUser, SessionDep, SessionFactoryDep, SettingsDep, unauthorized
from app.api.routes.conversations import not_found
from app.api.url_guard import refuse_nul_in_url
from app.core.errors import ACCOUNT_GONE, ApiError
from app.schemas import ImportResult, OpenChatExport, error_responses
from app.services.transfer import storage
from app.services.transfer.markdown import conversation_markdown
from app.services.transfer.reader import ImportFileError

router = APIRouter(tags=["transfer"], dependencies=[Depends(refuse_nul_in_url)])

IMPORT_PATH = "/api/v1/import"
JSON_TYPE = "application/json"
MARKDOWN_TYPE = "text/markdown; charset=utf-8"
# Chunks of the uploaded file are written to disk this many bytes at a time (one thread hop each).
SPOOL_WRITE_BYTES = 1 << 20
FILENAME_MAX_CHARS = 80


def attachment(title: str | None, suffix: str) -> str:
    """Content-Disposition of a download named after the title: a plain ASCII name for every
    browser, and the title itself (RFC 5987) for those that read it."""
    name = " ".join(re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]+', " ", title or "").split())
    name = name[:FILENAME_MAX_CHARS].strip() or "conversation"
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    plain = re.sub(r"[^A-Za-z0-9._-]+", "-", plain).strip("-._") or "conversation"
    return f"attachment; filename=\"{plain}{suffix}\"; filename*=UTF-8''{quote(name + suffix, safe='')}"


@router.get(
    "/conversations/{conversation_id}/export",
    response_class=JSONResponse,  # documents the JSON download; the route returns the file itself
    responses={
        200: {
            "model": OpenChatExport,
            "description": "The conversation as a file: OpenChat JSON (every branch, settings and "
            "numbers; importable) or Markdown (the path shown, to read)",
            "content": {"text/markdown": {"schema": {"type": "string"}}},
        },
        **error_responses(400, 401, 404, 503),
    },
)
def export_conversation(
    conversation_id: str,
    session: SessionDep,
    user: CurrentUser,
    export_format: Annotated[Literal["openchat", "markdown"], Query(alias="format")] = "openchat",
) -> Response:
    now = datetime.now(UTC)
    try:
        if export_format == "markdown":
            conversation = crud.get_conversation(session, user.id, conversation_id)
            path, _ = crud.conversation_messages(session, conversation_id)  # the path shown, as GET shows it
            text = conversation_markdown(conversation, path, now)
            headers = {"Content-Disposition": attachment(conversation.title, ".md")}
            return Response(text, media_type=MARKDOWN_TYPE, headers=headers)
        conversation, messages = storage.conversation_with_messages(session, user.id, conversation_id)
    except (crud.NotFoundError, storage.ExportNotFoundError) as error:
        raise not_found(conversation_id) from error
    text = storage.export_one_json(conversation, messages, now)
    headers = {"Content-Disposition": attachment(conversation.title, ".json")}
    return Response(text, media_type=JSON_TYPE, headers=headers)


@router.get(
    "/export",
    response_class=JSONResponse,  # documents the JSON download; the route streams the file itself
    responses={
        200: {
            "model": OpenChatExport,
            "description": "All the user's conversations in OpenChat JSON, newest first, sent as it is written",
        },
        **error_responses(400, 401, 503),
    },
)
def export_all(
    sessions: SessionFactoryDep,
    user: CurrentUser,
    export_format: Annotated[Literal["openchat"], Query(alias="format")] = "openchat",
) -> StreamingResponse:
    now = datetime.now(UTC)
    filename = f"openchat-export-{now:%Y-%m-%d}.json"
    return StreamingResponse(
        storage.export_all_chunks(sessions, user.id, now),  # a sync iterator: read in threads
        media_type=JSON_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "body_too_large",
        f"The file is larger than the import limit of {limit} bytes (OPENCHAT_MAX_IMPORT_BYTES): "
        "split it, or ask the operator to raise the limit.",
    )


@router.post(
    "/import",
    response_model=ImportResult,
    responses=error_responses(
        400,
        401,
        409,
        413,
        503,
        described={
            400: "Not JSON, not a known export format, or a bad record (named in `detail`); nothing was stored",
            409: "The same conversations were being imported at the same time; nothing was stored",
            413: "The file is larger than OPENCHAT_MAX_IMPORT_BYTES",
        },
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The export file itself, as the raw body: an OpenChat JSON export, ChatGPT's "
            "conversations.json, or Open WebUI's chat export (the format is detected)",
            # Loosely: each format is checked record by record, with errors that name the record.
            "content": {
                JSON_TYPE: {"schema": {"anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}}
            },
        }
    },
)
async def import_conversations(
    request: Request, sessions: SessionFactoryDep, settings: SettingsDep, user: CurrentUser
) -> ImportResult:
    """Import the conversations of an export file: all of them, or none when one is bad (the
    error names it). They get new ids and belong to the caller. The body is read as a stream
    into a temporary file (never whole in memory), then read record by record."""
    limit = settings.max_import_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    spool = await anyio.to_thread.run_sync(tempfile.TemporaryFile)
    try:
        size = 0
        pending = bytearray()
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:  # a chunked body, or one longer than it said
                    raise _too_large(limit)
                pending += chunk
                if len(pending) >= SPOOL_WRITE_BYTES:
                    await anyio.to_thread.run_sync(spool.write, bytes(pending))
                    pending.clear()
        except ClientDisconnect:
            raise ApiError(400, "incomplete_body", "The upload ended before the whole file was sent.") from None
        await anyio.to_thread.run_sync(spool.write, bytes(pending))
        if size == 0:
            raise ApiError(400, "empty_body", "Send the export file as the request body (it was empty).")
        try:
            outcome = await anyio.to_thread.run_sync(storage.import_file, sessions, user.id, spool)
        except ImportFileError as error:
            raise ApiError(400, error.code, error.detail) from None
        except storage.ImportConflictError:
            raise ApiError(
                409, "import_conflict", "The same conversations were being imported at the same time; import again."
            ) from None
        except storage.ImportUserGoneError:
            raise unauthorized(ACCOUNT_GONE) from None
    finally:
        await anyio.to_thread.run_sync(spool.close)
    return ImportResult(
        imported=outcome.imported, duplicates=outcome.duplicates, conversation_ids=outcome.conversation_ids
    )
