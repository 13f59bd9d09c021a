"""The reply a conversation is generating (resumable replies, app/services/reply_runs.py):
follow it again (GET /conversations/{id}/stream), or stop it (POST /conversations/{id}/stop)."""

import logging

import anyio
from fastapi import APIRouter, Depends, Response
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from app import crud
from app.api.deps import CurrentUserId, RequestsStored, SessionFactoryDep
from app.api.routes.chat import EventStreamResponse, ReplyRunsDep, reader_left
from app.api.routes.conversations import not_found
from app.api.url_guard import refuse_nul_in_url
from app.core.errors import ApiError
from app.schemas import STREAM_EVENT_REF, error_responses

log = logging.getLogger(__name__)

# As app/api/routes/conversations.py: the user's chat requests being stored are, first.
router = APIRouter(
    prefix="/conversations", tags=["conversations"], dependencies=[Depends(refuse_nul_in_url), RequestsStored]
)

REDIS_DOWN = ApiError(
    503,
    "redis_unavailable",
    "Redis (REDIS_URL), which replicas share replies through, is not answering; retry in a few seconds.",
    headers={"Retry-After": "5"},
)

DESCRIBED = {
    404: "The conversation does not exist, or is someone else's",
    503: "The database, or Redis (REDIS_URL) that replicas share replies through, is unavailable; "
    "retry after `Retry-After`",
}


async def check_owner(sessions: SessionFactoryDep, user_id: str, conversation_id: str) -> None:
    """404 unless the conversation is the user's."""

    def owned() -> None:
        with sessions() as session:
            crud.get_conversation(session, user_id, conversation_id)

    try:
        await anyio.to_thread.run_sync(owned)
    except crud.NotFoundError as error:
        raise not_found(conversation_id) from error


@router.get(
    "/{conversation_id}/stream",
    response_class=StreamingResponse,
    status_code=200,
    responses={
        200: {
            "content": {"application/x-ndjson": {"schema": {"$ref": STREAM_EVENT_REF}}},
            "description": "The reply generating now, as POST /chat streams it: replayed from its first event, "
            "then live, until `end` or `error`",
        },
        204: {"description": "No reply of this conversation is generating (it has ended, or is still starting)"},
        **error_responses(400, 401, 404, 503, described=DESCRIBED),
    },
)
async def follow_reply(
    conversation_id: str, user_id: CurrentUserId, sessions: SessionFactoryDep, runs: ReplyRunsDep
) -> Response:
    """Follow the conversation's reply that is generating (sent with `data.resumable`), from any
    replica, by any number of readers. Leaving does not stop it."""
    await check_owner(sessions, user_id, conversation_id)
    try:
        lines = await runs.follow(conversation_id)
    except RedisError as error:
        log.warning("Could not look for the reply of conversation %s in Redis: %s", conversation_id, error)
        raise REDIS_DOWN from error
    if lines is None:
        return Response(status_code=204)
    return EventStreamResponse(lines, on_close=reader_left)


@router.post(
    "/{conversation_id}/stop",
    status_code=204,
    responses={
        204: {"description": "Stopped and stored `cancelled`, or nothing was generating"},
        **error_responses(400, 401, 404, 503, described=DESCRIBED),
    },
)
async def stop_reply(
    conversation_id: str, user_id: CurrentUserId, sessions: SessionFactoryDep, runs: ReplyRunsDep
) -> Response:
    """Stop the conversation's resumable reply, wherever it generates; its readers get `end` with
    finish_reason `cancelled`. Answers once the reply is stored `cancelled` with its text so far
    (waiting a few seconds at most), and at once when nothing is generating."""
    await check_owner(sessions, user_id, conversation_id)
    try:
        await runs.stop(conversation_id)
    except RedisError as error:
        log.warning("Could not send the stop of conversation %s through Redis: %s", conversation_id, error)
        raise REDIS_DOWN from error
    return Response(status_code=204)
