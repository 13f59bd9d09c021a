"""A chat model's reply, chunk by chunk, with no per-token bookkeeping by LangChain."""

from collections.abc import AsyncGenerator

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage


class StreamInterruptedError(Exception):
    """The model's server stopped mid-reply: it sent nothing for too long, or it closed the
    connection before the end of its stream. `code` says which (the client's error event)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def stream_reply(model: BaseChatModel, messages: list[BaseMessage]) -> AsyncGenerator[AIMessageChunk, None]:
    """Like `model.astream(messages)`, minus what OpenChat does not use: astream() sets up a
    callback manager and a run (for tracers), calls it for every token, keeps every chunk and
    merges them all at the end; profiled under load, that cost as much as the rest of the
    stream. `_astream` is the method every LangChain chat model implements to stream (the one
    astream() wraps). As astream() does, each chunk's generation info (finish_reason, model
    name) is put in its response_metadata."""
    async for generation in model._astream(messages):
        message = generation.message
        if not isinstance(message, AIMessageChunk):
            raise TypeError(f"{type(model).__name__} streamed a {type(message).__name__}, not an AIMessageChunk")
        if generation.generation_info:
            message.response_metadata = {**generation.generation_info, **message.response_metadata}
        yield message
