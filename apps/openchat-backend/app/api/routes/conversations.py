"""Conversations of the current user: list and search, read, rename or change settings, delete,
and show another version (branch) of a message."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from app import crud
from app.api.deps import CurrentUser, RequestsStored, SessionDep
from app.api.url_guard import refuse_nul_in_url
from app.core.errors import ApiError
from app.models import Conversation, Message
from app.schemas import (
    BranchBody,
    ConversationOut,
    ConversationPage,
    ConversationPatch,
    ConversationSummary,
    ConversationWithSettings,
    MessageOut,
    error_responses,
)

# Every route waits for the user's chat requests being stored (a chat stores its request just
# after its first lines): the web app reads the list, or stops the reply, as soon as it starts.
router = APIRouter(
    prefix="/conversations", tags=["conversations"], dependencies=[Depends(refuse_nul_in_url), RequestsStored]
)


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


Before = Annotated[int | None, Query(ge=0, description="Only messages before this position (a message's `position`)")]
Limit = Annotated[int | None, Query(ge=1, le=1000, description="Only the latest this many (of those before `before`)")]
SIBLING_FIELDS = {"sibling_ids", "sibling_index", "sibling_count"}


def message_out(message: Message, sibling_ids: list[str]) -> MessageOut:
    stored = {name: getattr(message, name) for name in MessageOut.model_fields if name not in SIBLING_FIELDS}
    return MessageOut.model_validate(
        {
            **stored,
            "sibling_ids": sibling_ids,
            "sibling_index": sibling_ids.index(message.id),
            "sibling_count": len(sibling_ids),
        }
    )


def conversation_out(
    session: Session, conversation: Conversation, before: int | None, limit: int | None
) -> ConversationOut:
    messages, has_more = crud.conversation_messages(session, conversation.id, before=before, limit=limit)
    siblings = crud.sibling_ids(session, conversation.id, messages)
    summary = ConversationWithSettings.model_validate(conversation)
    summary.generating = bool(crud.generating_conversations(session, [conversation.id]))
    return ConversationOut(
        **summary.model_dump(),
        messages=[message_out(message, siblings[message.id]) for message in messages],
        has_more=has_more,
    )


@router.get("/{conversation_id}", response_model=ConversationOut, responses=error_responses(400, 401, 404, 503))
def get_conversation(
    conversation_id: str, session: SessionDep, user: CurrentUser, before: Before = None, limit: Limit = None
) -> ConversationOut:
    """The conversation with the messages of the path shown, oldest first: every one by default,
    or a page of the latest `limit` (before `before`); `has_more` says whether earlier messages
    remain. Each message lists its versions (`sibling_ids`)."""
    try:
        conversation = crud.get_conversation(session, user.id, conversation_id)
    except crud.NotFoundError as error:
        raise not_found(conversation_id) from error
    return conversation_out(session, conversation, before, limit)


@router.post(
    "/{conversation_id}/branch",
    response_model=ConversationOut,
    responses=error_responses(
        400, 401, 404, 413, 503, described={404: "The conversation is not the caller's, or the message is not in it"}
    ),
)
def show_branch(
    conversation_id: str,
    body: BranchBody,
    session: SessionDep,
    user: CurrentUser,
    before: Before = None,
    limit: Limit = None,
) -> ConversationOut:
    """Show another version of a message: the path shown goes through `message_id` and on to the
    newest message below it; sending then continues from there. Answers as GET does."""
    try:
        conversation = crud.show_branch(session, user.id, conversation_id, body.message_id)
    except crud.MessageNotFoundError as error:
        raise ApiError(
            404,
            "not_found",
            f"Message '{body.message_id}' is not in this conversation: use an id from a message's `sibling_ids`.",
        ) from error
    except crud.NotFoundError as error:
        raise not_found(conversation_id) from error
    return conversation_out(session, conversation, before, limit)


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
