"""LangChain's ChatOpenAI for OpenAI-compatible servers, with less work per streamed token.

Profiled under load (py-spy, docs/benchmarks.md), most of the backend's time per token went to
the openai SDK building a typed chunk object from each SSE line, which ChatOpenAI then dumps
back to a dict, and to a task that ChatOpenAI starts per chunk to time it out. In front of a
local engine, which keeps both cores busy, each token's wake-up ran cold code: every layer it
went through cost tens of microseconds, taken from the engine. This keeps ChatOpenAI (its
request payload, its dict-to-message conversion, its errors) and changes only that:
- chunks are parsed once (orjson), from the bytes the HTTP transport received (aiohttp for a
  remote server, app/llm/loopback_http.py for the local engine), and reach ChatOpenAI as the
  dicts it wants;
- a stalled server is caught by the HTTP read timeout (per socket read), not by a task per chunk;
- `stream_pieces` gives a token's text as it is, and every other chunk as ChatOpenAI makes it.
"""

import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Self

import aiohttp
import httpx2  # the openai SDK's HTTP client
import openai
import orjson
import yarl
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models.base import _handle_openai_api_error, _handle_openai_bad_request
from openai._constants import RAW_RESPONSE_HEADER
from openai._streaming import SSEDecoder
from openai._vendor.httpx_aiohttp.transport import AiohttpResponseStream, AiohttpTransport
from pydantic import Field, model_validator

from app.llm.loopback_http import BODY_PIECES, LoopbackTransport
from app.llm.streaming import ReplyPiece, StreamInterruptedError, message_pieces, with_generation_info

# The longest a local engine may stay silent (or take to connect) before the reply fails;
# ChatOpenAI's own per-chunk limit is the same 120 s. Remote servers: OPENCHAT_UPSTREAM_TIMEOUT_S.
SILENCE_TIMEOUT_S = 120.0


# Connections to remote servers: at most this many at once, kept idle at most this long.
REMOTE_CONNECTIONS = 1000
REMOTE_KEEPALIVE_S = 4.0

# Keys of ChatOpenAI's payload that the openai SDK takes as request options, not as the JSON body.
PASSED_AS_OPTIONS = {"extra_body", "extra_headers", "extra_query", "timeout"}


EVENT_END = re.compile(rb"(?:\r\n|\r|\n)(?:\r\n|\r|\n)")  # a blank line ends an SSE event


def plain_events(piece: bytes) -> list[bytes] | None:
    """The data of the events in `piece` if it holds whole plain events only (each `data: <one
    line>` and a blank line, LF only), else None."""
    if not piece.startswith(b"data: ") or not piece.endswith(b"\n\n") or b"\r" in piece:
        return None
    if piece.count(b"\n") == 2:  # one event: the usual case, once per token
        return [piece[6:-2]]
    events = piece[:-2].split(b"\n\n")
    for event in events:
        if not event.startswith(b"data: ") or b"\n" in event:
            return None
    return [event[6:] for event in events]


async def sse_data(body: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The `data` of each server-sent event in a body. Servers send whole events, `data: {...}`
    and a blank line, one to a piece or, when the reader falls behind, several: those are split
    as they are; anything else goes through the openai SDK's full SSE decoder (comments, several
    data lines, CRLF, events split across pieces)."""
    pending = b""
    async for piece in body:
        if not pending and (plain := plain_events(piece)) is not None:
            for data in plain:
                yield data.decode()
            continue
        pending += piece
        ends = list(EVENT_END.finditer(pending))
        if ends:
            complete, pending = pending[: ends[-1].end()], pending[ends[-1].end() :]
            for event in SSEDecoder().iter_bytes(iter([complete])):
                yield event.data
    if pending:
        for event in SSEDecoder().iter_bytes(iter([pending + b"\n\n"])):
            yield event.data


class ModelServerTransport(AiohttpTransport):
    """The openai SDK's aiohttp transport, which maps every aiohttp connection error to httpx's
    ConnectTimeout, so that a refused connection or an unknown host read "Request timed out.".
    Those are ConnectError here, as with httpx: the SDK says "Connection error." and retries.
    The aiohttp response's own reader is kept in the response's extensions (BODY_PIECES)."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx2.ConnectTimeout as error:
            if isinstance(error.__cause__, aiohttp.ClientConnectorError | aiohttp.ServerDisconnectedError):
                raise httpx2.ConnectError(str(error), request=request) from error.__cause__
            raise
        if isinstance(response.stream, AiohttpResponseStream):
            response.extensions[BODY_PIECES] = response.stream._aiohttp_response.content.iter_any
        return response


def loopback_http_client(timeout_s: float) -> httpx2.AsyncClient:
    """The HTTP client for a local engine: httptools in a protocol of its own (app/llm/loopback_http.py),
    a new connection per request. At a real engine's pace each token wakes the backend on its
    own, on the two cores the engine computes with: this reader costs less of the backend's CPU
    per token than aiohttp's, as aiohttp's did than httpx's (docs/benchmarks.md, section 6)."""
    return openai.DefaultAsyncHttpxClient(transport=LoopbackTransport(), timeout=timeout_s)


def environment_proxy(url: str) -> httpx2.Proxy | None:
    """The proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY, ...; none when NO_PROXY
    covers its host), with its credentials as a header."""
    try:
        proxy, auth = aiohttp.helpers.get_env_proxy_for_url(yarl.URL(url))
    except LookupError:
        return None
    return httpx2.Proxy(str(proxy), headers={"Proxy-Authorization": auth.encode()} if auth else None)


def remote_http_client(base_url: str, timeout_s: float) -> httpx2.AsyncClient:
    """The HTTP client for a remote OpenAI-compatible server (vLLM, Ollama, a hosted API): the same
    aiohttp transport, which costs less per streamed token than httpx's and keeps more streams
    going on two cores (docs/benchmarks.md, section 6). It takes what the openai SDK's httpx
    client took from the environment: the proxy (read once here; aiohttp's own trust_env would
    read it, and ~/.netrc, in a thread for every request) and the certificate store (SSL_CERT_FILE,
    SSL_CERT_DIR, else the system's). Connections are kept alive (a TLS handshake per request
    would cost a round trip or more) for less time than uvicorn-based servers keep them (5 s),
    and as many at once as the SDK's own client allows (1,000)."""
    ssl_context = httpx2.create_ssl_context(trust_env=True)

    def session() -> aiohttp.ClientSession:  # made on first use, inside the event loop
        connector = aiohttp.TCPConnector(
            ssl=ssl_context, limit=REMOTE_CONNECTIONS, keepalive_timeout=REMOTE_KEEPALIVE_S
        )
        return aiohttp.ClientSession(connector=connector)

    transport = ModelServerTransport(client=session, proxy=environment_proxy(base_url))
    return openai.DefaultAioHttpClient(transport=transport, timeout=timeout_s)


class DictChunkStream:
    """A chat completion's SSE stream as plain dicts; an async context manager, as the openai
    SDK's stream is, which closes the response."""

    def __init__(self, response: Any, timeout_s: float | None) -> None:
        self._response = response
        self._timeout_s = timeout_s

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._response.aclose()

    def _body(self) -> AsyncIterator[bytes]:
        """The body's pieces as they come: from the transport's own reader when it left one
        (BODY_PIECES: four wrappers fewer per token, each a wake-up of cold code on a busy CPU),
        through httpx otherwise or when it must be decoded (Content-Encoding)."""
        pieces = self._response.extensions.get(BODY_PIECES)
        if pieces is None or self._response.headers.get("content-encoding", "identity") != "identity":
            body: AsyncIterator[bytes] = self._response.aiter_bytes()
            return body
        return pieces()  # type: ignore[no-any-return]

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        done = False  # every OpenAI-compatible stream ends with `data: [DONE]`
        closed = StreamInterruptedError(
            "upstream_disconnected", "The model server closed the connection before the reply was finished."
        )
        try:
            async for data in sse_data(self._body()):
                # Read on to the body's end after [DONE]: a connection is reused only when it was read whole.
                if done or not data:
                    continue
                if data.startswith("[DONE]"):
                    done = True
                    continue
                chunk = orjson.loads(data)
                if isinstance(chunk, dict) and chunk.get("error"):
                    error = chunk["error"]
                    message = error.get("message") if isinstance(error, dict) else None
                    raise openai.APIError(
                        message=str(message or "the server reported an error while streaming"),
                        request=self._response.request,
                        body=error,
                    )
                yield chunk
        except (httpx2.ReadTimeout, aiohttp.SocketTimeoutError) as error:
            if not done:
                silence = f"{self._timeout_s:g} s" if self._timeout_s else "too long"
                message = f"The model server sent nothing for {silence} and was given up on."
                raise StreamInterruptedError("upstream_timeout", message) from error
        except (httpx2.TransportError, aiohttp.ClientError) as error:  # httpx's aiohttp adapter: ConnectTimeout
            if not done:
                raise closed from error
        if not done:
            raise closed


class DictChunkCompletions:
    """The openai SDK's `chat.completions`, whose streams yield dicts (DictChunkStream)."""

    def __init__(self, completions: Any, timeout_s: float | None) -> None:
        self._completions = completions
        self._timeout_s = timeout_s

    async def create(self, **payload: Any) -> Any:
        if not payload.get("stream"):
            return await self._completions.create(**payload)
        # create() first rewrites the payload by its type annotations (about a millisecond per
        # request); LangChain's payload is plain JSON already, so it is posted as it is, through
        # the same client (base URL, key, retries, errors: an error status raises as create's would).
        body = {key: value for key, value in payload.items() if key not in PASSED_AS_OPTIONS}
        body.update(payload.get("extra_body") or {})
        options: dict[str, Any] = {"headers": {RAW_RESPONSE_HEADER: "stream", **(payload.get("extra_headers") or {})}}
        if payload.get("extra_query"):
            options["params"] = payload["extra_query"]
        if payload.get("timeout") is not None:
            options["timeout"] = payload["timeout"]
        response = await self._completions._client.post(
            "/chat/completions", body=body, cast_to=httpx2.Response, options=options
        )
        return DictChunkStream(response, self._timeout_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._completions, name)


def token_text(chunk: dict[str, Any]) -> str | None:
    """The text of a chunk that carries nothing else, as almost every chunk of a reply does (one
    token); None for any other chunk (role, usage, finish reason, progress, tool calls)."""
    choices = chunk.get("choices")
    if not choices or len(choices) != 1 or chunk.get("usage") or "prompt_progress" in chunk:
        return None
    choice = choices[0]
    delta = choice.get("delta")
    if not isinstance(delta, dict) or choice.get("finish_reason") or choice.get("logprobs"):
        return None
    text = delta.get("content")
    if not isinstance(text, str) or not text or delta.get("role") not in (None, "assistant"):
        return None
    for key, value in delta.items():  # servers add keys of their own, null in a plain token (vLLM)
        if value is not None and key not in ("content", "role"):
            return None
    return text


class ProgressChatOpenAI(ChatOpenAI):
    """ChatOpenAI for OpenAI-compatible servers, streaming dict chunks (see the module's
    docstring). It also keeps the prompt progress of llama.cpp's llama-server: asked with
    `"return_progress": true`, it streams how much of the prompt it has read as
    `prompt_progress` ({total, cache, processed, time_ms}) in chunks before the first token;
    ChatOpenAI drops keys it does not know, so this copies that one into the chunk's
    response_metadata."""

    stream_chunk_timeout: float | None = Field(default=None, exclude=True)
    # A number, not an httpx.Timeout: LangChain shares one HTTP client per (URL, timeout) only
    # for hashable timeouts, and a new client per request cost ~50 ms.
    request_timeout: Any = Field(default=SILENCE_TIMEOUT_S, alias="timeout")

    @model_validator(mode="after")
    def _stream_dict_chunks(self) -> Self:
        if self.async_client is not None and not isinstance(self.async_client, DictChunkCompletions):
            timeout = self.request_timeout if isinstance(self.request_timeout, int | float) else None
            self.async_client = DictChunkCompletions(self.async_client, timeout)
        return self

    def _convert_chunk_to_generation_chunk(
        self, chunk: dict[str, Any], default_chunk_class: type, base_generation_info: dict[str, Any] | None
    ) -> ChatGenerationChunk | None:
        generation = super()._convert_chunk_to_generation_chunk(chunk, default_chunk_class, base_generation_info)
        progress = chunk.get("prompt_progress")
        if generation is not None and isinstance(progress, dict):
            generation.message.response_metadata["prompt_progress"] = progress
        return generation

    async def stream_pieces(self, messages: list[BaseMessage]) -> AsyncGenerator[ReplyPiece, None]:
        """The reply as ChatOpenAI's `_astream` streams it (the same request, chunks and errors),
        except that a chunk holding only a token's text comes as that text: building a
        ChatGenerationChunk and an AIMessageChunk (their validators) for every token was the
        largest part of the backend's work per token, which it takes from the engine's two cores
        (docs/benchmarks.md). Other chunks (the first, usage, finish reason, prompt progress) are
        AIMessageChunks with their generation info in response_metadata, as stream_reply gives."""
        kwargs: dict[str, Any] = {"stream": True}
        if self._should_stream_usage():
            kwargs["stream_options"] = {"include_usage": True}
        payload = self._get_request_payload(messages, **kwargs)
        if (
            self._use_responses_api({**kwargs, **self.model_kwargs})
            or "response_format" in payload
            or self.include_response_headers
            or self._uses_gateway
        ):  # ChatOpenAI's other ways of streaming: as they are
            async for piece in message_pieces(self, messages):
                yield piece
            return
        try:
            async with await self.async_client.create(**payload) as chunks:
                async for chunk in chunks:
                    if (text := token_text(chunk)) is not None:
                        yield text
                    elif generation := self._convert_chunk_to_generation_chunk(chunk, AIMessageChunk, None):
                        yield with_generation_info(generation)
        except openai.BadRequestError as error:
            _handle_openai_bad_request(error)
        except openai.APIError as error:
            _handle_openai_api_error(error)
