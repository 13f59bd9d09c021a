"""POST /api/v1/chat: stream a reply as NDJSON (see app/services/chat.py)."""

import time
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from app.api.deps import CurrentUser, RateLimitsDep
from app.schemas import STREAM_EVENT_REF, ChatRequest
from app.services.chat import ChatService

router = APIRouter(tags=["chat"])

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def get_chat_service(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat_service
    return service


ChatServiceDep = Annotated[ChatService, Depends(get_chat_service)]


@router.post(
    "/chat",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {"schema": {"$ref": STREAM_EVENT_REF}}},
            "description": "One JSON event per line (a StreamEvent); clients ignore unknown types",
        },
        400: {"description": "Invalid request"},
        404: {"description": "Conversation belongs to someone else or does not exist"},
        429: {"description": "Model busy, too many replies of this user at once, or rate limited; see Retry-After"},
        503: {"description": "The local engine is restarting or unavailable; see Retry-After"},
    },
)
async def chat(
    body: ChatRequest, user: CurrentUser, service: ChatServiceDep, limits: RateLimitsDep
) -> StreamingResponse:
    started = time.monotonic()
    await anyio.to_thread.run_sync(limits.check, "chat", f"user:{user.id}")  # a Redis call would block
    prepared = await service.prepare(body, user.id, started)
    generation = await service.start(prepared, user.id)
    return StreamingResponse(
        service.events(prepared, generation), media_type="application/x-ndjson", headers=STREAM_HEADERS
    )
