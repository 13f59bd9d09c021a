"""Conversations of the current user: list and search, read, rename or change settings, delete."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app import crud
from app.api.deps import CurrentUser, SessionDep
from app.api.url_guard import refuse_nul_in_url
from app.core.errors import ApiError
from app.schemas import (
    ConversationOut,
    ConversationPage,
    ConversationPatch,
    ConversationSummary,
    ConversationWithSettings,
    MessageOut,
    error_responses,
)

router = APIRouter(prefix="/conversations", tags=["conversations"], dependencies=[Depends(refuse_nul_in_url)])


def not_found(conversation_id: str) -> ApiError:
    shown = conversation_id if len(conversation_id) <= 64 else conversation_id[:64] + "…"  # none is longer
    return ApiError(404, "not_found", f"Conversation '{shown}' not found.")


@router.get("", response_model=ConversationPage, responses=error_responses(400, 401, 503))
def list_conversations(
    session: SessionDep,
    user: CurrentUser,
    q: Annotated[str | None, Query(max_length=200, description="Search titles and messages")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> ConversationPage:
    try:
        rows, next_cursor = crud.list_conversations(session, user.id, q=q or None, limit=limit, cursor=cursor)
    except ValueError as error:
        raise ApiError(400, "invalid_cursor", "The cursor is not valid; start again without it.") from error
    generating = crud.generating_conversations(session, [row.id for row in rows])
    summaries = [ConversationSummary.model_validate(row) for row in rows]
    for summary in summaries:
        summary.generating = summary.id in generating
    return ConversationPage(conversations=summaries, next_cursor=next_cursor)


@router.get("/{conversation_id}", response_model=ConversationOut, responses=error_responses(400, 401, 404, 503))
def get_conversation(
    conversation_id: str,
    session: SessionDep,
    user: CurrentUser,
    before: Annotated[
        int | None, Query(ge=0, description="Only messages before this position (a message's `position`)")
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=1000, description="Only the latest this many (of those before `before`)")
    ] = None,
) -> ConversationOut:
    """The conversation with its messages, oldest first: every one by default, or a page of the
    latest `limit` (before `before`); `has_more` says whether earlier messages remain."""
    try:
        conversation = crud.get_conversation(session, user.id, conversation_id)
    except crud.NotFoundError as error:
        raise not_found(conversation_id) from error
    messages, has_more = crud.conversation_messages(session, conversation_id, before=before, limit=limit)
    summary = ConversationWithSettings.model_validate(conversation)
    summary.generating = bool(crud.generating_conversations(session, [conversation_id]))
    return ConversationOut(
        **summary.model_dump(),
        messages=[MessageOut.model_validate(message) for message in messages],
        has_more=has_more,
    )


@router.patch(
    "/{conversation_id}", response_model=ConversationWithSettings, responses=error_responses(400, 401, 404, 413, 503)
)
def update_conversation(
    conversation_id: str, patch: ConversationPatch, session: SessionDep, user: CurrentUser
) -> ConversationWithSettings:
    settings = patch.settings.model_dump(exclude_unset=True) if patch.settings is not None else None
    try:
        conversation = crud.update_conversation(session, user.id, conversation_id, title=patch.title, settings=settings)
    except crud.NotFoundError as error:
        raise not_found(conversation_id) from error
    summary = ConversationWithSettings.model_validate(conversation)
    summary.generating = bool(crud.generating_conversations(session, [conversation_id]))
    return summary


@router.delete("/{conversation_id}", status_code=204, responses=error_responses(400, 401, 404, 503))
def delete_conversation(conversation_id: str, session: SessionDep, user: CurrentUser) -> Response:
    try:
        crud.delete_conversation(session, user.id, conversation_id)
    except crud.NotFoundError as error:
        raise not_found(conversation_id) from error
    return Response(status_code=204)
