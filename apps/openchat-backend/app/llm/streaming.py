"""A chat model's reply, piece by piece, with no per-token bookkeeping by LangChain."""

from collections.abc import AsyncGenerator
from typing import Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

# A piece of a reply: a token's text, or a chunk that carries more (the first, usage, the finish
# reason, a prompt's progress), with its generation info in response_metadata.
ReplyPiece = str | AIMessageChunk


class StreamInterruptedError(Exception):
    """The model's server stopped mid-reply: it sent nothing for too long, or it closed the
    connection before the end of its stream. `code` says which (the client's error event)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@runtime_checkable
class StreamsPieces(Protocol):
    """A chat model that streams a token's text without a chunk object around it (ProgressChatOpenAI)."""

    def stream_pieces(self, messages: list[BaseMessage]) -> AsyncGenerator[ReplyPiece, None]: ...


def with_generation_info(generation: ChatGenerationChunk) -> AIMessageChunk:
    """The generation's message, with its generation info (finish_reason, model name) put in its
    response_metadata as astream() does."""
    message = generation.message
    if not isinstance(message, AIMessageChunk):
        raise TypeError(f"a chat model streamed a {type(message).__name__}, not an AIMessageChunk")
    if generation.generation_info:
        message.response_metadata = {**generation.generation_info, **message.response_metadata}
    return message


async def message_pieces(model: BaseChatModel, messages: list[BaseMessage]) -> AsyncGenerator[ReplyPiece, None]:
    """Like `model.astream(messages)`, minus what OpenChat does not use: astream() sets up a
    callback manager and a run (for tracers), calls it for every token, keeps every chunk and
    merges them all at the end; profiled under load, that cost as much as the rest of the
    stream. `_astream` is the method every LangChain chat model implements to stream (the one
    astream() wraps)."""
    async for generation in model._astream(messages):
        yield with_generation_info(generation)


def stream_reply(model: BaseChatModel, messages: list[BaseMessage]) -> AsyncGenerator[ReplyPiece, None]:
    """The model's reply, piece by piece: its own `stream_pieces` if it has one, else `_astream`'s chunks."""
    if isinstance(model, StreamsPieces):
        return model.stream_pieces(messages)
    return message_pieces(model, messages)
