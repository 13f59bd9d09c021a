"""Local GGUF models run in-process with llama-cpp-python, as a LangChain chat model.

One `LocalEngine` per GGUF file owns one llama.cpp context. llama.cpp can run only one
generation per context, so every generation runs in a worker thread that takes a FIFO
turn and keeps it until the model call has returned, even when the client has already
gone (releasing it earlier lets a second generation start on the same context, which
aborts the process). The event loop only ever waits on an asyncio queue fed by that thread.
"""

from __future__ import annotations

import asyncio
import codecs
import math
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

ROLE_BY_TYPE = {"human": "user", "ai": "assistant", "system": "system"}


class EngineBusyError(RuntimeError):
    """The model is generating and its waiting queue is full."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"The model is busy; retry in {retry_after} s.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class GgufInfo:
    name: str
    architecture: str
    context_length: int


def read_gguf_info(path: Path) -> GgufInfo:
    """Name and trained context length from the file's metadata (vocabulary only, no weights)."""
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = LlamaModel(path_model=str(path), params=params, verbose=False)
    try:
        meta = model.metadata()
        arch = meta.get("general.architecture", "")
        context = int(meta.get(f"{arch}.context_length") or model.n_ctx_train() or 2048)
        return GgufInfo(name=meta.get("general.name") or path.stem, architecture=arch, context_length=context)
    finally:
        model.close()


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 1024


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"


@dataclass
class _Job:
    """One generation request as seen by its worker thread."""

    messages: list[dict[str, str]]
    params: SamplingParams
    cancel: threading.Event = field(default_factory=threading.Event)


class LocalEngine:
    """One GGUF file, loaded once and kept warm; one generation at a time, FIFO, bounded queue."""

    def __init__(self, path: Path, *, context_tokens: int, threads: int, queue_size: int) -> None:
        self.path = path
        self.requested_context = context_tokens
        self.threads = threads or os.cpu_count() or 1
        self.queue_size = queue_size
        self._llama: Any = None
        self._formatter: Any = None
        self._load_lock = threading.Lock()
        # FIFO turns: a thread may run the model only when `_serving` equals its ticket.
        self._turns = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._pending = 0  # admitted and not yet returned: running + waiting
        self._avg_seconds = 10.0  # running estimate of a generation's duration, for Retry-After

    # -- loading ---------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    def load(self) -> Any:
        """Load the model (blocking; call from a worker thread). Idempotent."""
        with self._load_lock:
            if self._llama is None:
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                llama = self._open(self.requested_context)
                if llama.n_ctx() > llama._model.n_ctx_train():
                    # Never run past what the model was trained for.
                    trained = llama._model.n_ctx_train()
                    llama.close()
                    llama = self._open(trained)
                self._formatter = self._make_formatter(llama, Jinja2ChatFormatter)
                self._llama = llama
            return self._llama

    def _open(self, context: int) -> Any:
        from llama_cpp import Llama

        return Llama(
            model_path=str(self.path),
            n_ctx=context,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            verbose=False,
        )

    def close(self) -> None:
        """Free the model now if idle (at exit: llama.cpp may crash if left to the garbage collector)."""
        with self._turns:
            if self._pending:
                return
            with self._load_lock:
                if self._llama is not None:
                    self._llama.close()
                    self._llama = None

    @staticmethod
    def _make_formatter(llama: Any, formatter_class: Any) -> Any:
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise RuntimeError("This GGUF file has no chat template; it is not a chat model.")
        eos_id, bos_id = llama.token_eos(), llama.token_bos()
        return formatter_class(
            template=template,
            eos_token=llama._model.token_get_text(eos_id) if eos_id != -1 else "",
            bos_token=llama._model.token_get_text(bos_id) if bos_id != -1 else "",
            stop_token_ids=[eos_id],
        )

    @property
    def context_window(self) -> int:
        return self._llama.n_ctx() if self._llama is not None else self.requested_context

    # -- prompts ---------------------------------------------------------------------------

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The exact tokens the model will see for these messages (blocking)."""
        llama = self.load()
        formatted = self._formatter(messages=messages)
        prompt = formatted.prompt.encode("utf-8")
        return list(llama.tokenize(prompt, add_bos=not formatted.added_special, special=True))

    # -- admission and turns ---------------------------------------------------------------

    @property
    def queue_length(self) -> int:
        """Requests waiting for their turn (not counting the one generating)."""
        return max(0, self._pending - 1)

    def admit(self) -> int:
        """Reserve a place in line or raise EngineBusyError. Returns the ticket."""
        with self._turns:
            if self._pending >= 1 + self.queue_size:
                retry = math.ceil(self._avg_seconds * (self._pending - self.queue_size))
                raise EngineBusyError(retry_after=max(1, min(retry, 120)))
            self._pending += 1
            ticket = self._next_ticket
            self._next_ticket += 1
            return ticket

    def _wait_turn(self, ticket: int) -> None:
        with self._turns:
            self._turns.wait_for(lambda: self._serving == ticket)

    def _end_turn(self, seconds: float | None) -> None:
        with self._turns:
            self._serving += 1
            self._pending -= 1
            if seconds is not None:
                self._avg_seconds = 0.7 * self._avg_seconds + 0.3 * seconds
            self._turns.notify_all()

    # -- generation ------------------------------------------------------------------------

    def run(self, ticket: int, job: _Job, on_token: Any, on_stats: Any | None = None) -> GenerationStats:
        """Wait for the turn, generate, and hold the turn until llama.cpp has returned."""
        self._wait_turn(ticket)
        started = time.monotonic()
        ran = False
        try:
            if job.cancel.is_set():
                return GenerationStats(finish_reason="cancelled")
            ran = True
            return self._generate(job, on_token)
        finally:
            self._end_turn(time.monotonic() - started if ran else None)

    def _generate(self, job: _Job, on_token: Any) -> GenerationStats:
        import llama_cpp

        llama = self.load()
        tokens = self.prompt_tokens(job.messages)
        stats = GenerationStats(prompt_tokens=len(tokens))
        budget = min(job.params.max_tokens, llama.n_ctx() - len(tokens))
        if budget <= 0:
            raise ValueError("The conversation does not fit in the model's context window.")
        # llama-cpp-python reuses the KV cache for the longest common prefix with the last call.
        stats.cached_prompt_tokens = llama.longest_token_prefix(llama._input_ids[: llama.n_tokens], tokens)
        vocab = llama._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stats.finish_reason = "length"
        generator = llama.generate(tokens, temp=job.params.temperature, top_p=job.params.top_p, repeat_penalty=1.05)
        try:
            for token in generator:
                if job.cancel.is_set():
                    stats.finish_reason = "cancelled"
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    stats.finish_reason = "stop"
                    break
                stats.completion_tokens += 1
                text = decoder.decode(llama.detokenize([token]))
                if text:
                    on_token(text)
                if stats.completion_tokens >= budget:
                    break
        finally:
            generator.close()
        tail = decoder.decode(b"", final=True)
        if tail:
            on_token(tail)
        return stats


def to_llama_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    result = []
    for message in messages:
        role = ROLE_BY_TYPE.get(message.type)
        if role is None:
            raise ValueError(f"Unsupported message type for a local model: {message.type}")
        result.append({"role": role, "content": message.text})
    return result


class ChatLocalLlama(BaseChatModel):
    """LangChain chat model over a `LocalEngine`, with true async streaming and cancellation."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    engine: LocalEngine = Field(exclude=True)
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 1024

    @property
    def _llm_type(self) -> str:
        return "openchat-llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "temperature": self.temperature, "top_p": self.top_p}

    def _params(self) -> SamplingParams:
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens)

    def _final_chunk(self, stats: GenerationStats) -> ChatGenerationChunk:
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": stats.prompt_tokens,
                    "output_tokens": stats.completion_tokens,
                    "total_tokens": stats.prompt_tokens + stats.completion_tokens,
                    "input_token_details": {"cache_read": stats.cached_prompt_tokens},
                },
                response_metadata={"finish_reason": stats.finish_reason, "model_name": self.model_name},
            )
        )

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Any = None) -> int:
        return len(self.engine.prompt_tokens(to_llama_messages(messages)))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        job = _Job(messages=to_llama_messages(messages), params=self._params())
        ticket = self.engine.admit()  # raises EngineBusyError before anything starts
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def push(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, (kind, value))
            except RuntimeError:  # the loop is gone: nobody is listening any more
                job.cancel.set()

        def work() -> None:
            try:
                stats = self.engine.run(ticket, job, lambda text: push("token", text))
                push("done", stats)
            except BaseException as error:  # noqa: BLE001 - every failure goes back to the client
                push("error", error)

        threading.Thread(target=work, name=f"llama-{self.model_name}", daemon=True).start()
        try:
            while True:
                kind, value = await events.get()
                if kind == "token":
                    # LangChain's astream reports each chunk to callbacks itself.
                    yield ChatGenerationChunk(message=AIMessageChunk(content=value))
                elif kind == "done":
                    yield self._final_chunk(value)
                    return
                else:
                    raise value
        finally:
            # Closed early (client gone, stop pressed): the worker stops at its next token.
            job.cancel.set()

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # Synchronous callers get the same worker-thread engine, read through a blocking queue.
        job = _Job(messages=to_llama_messages(messages), params=self._params())
        ticket = self.engine.admit()
        events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

        def work() -> None:
            try:
                events.put(("done", self.engine.run(ticket, job, lambda t: events.put(("token", t)))))
            except BaseException as error:  # noqa: BLE001
                events.put(("error", error))

        threading.Thread(target=work, name=f"llama-{self.model_name}", daemon=True).start()
        try:
            while True:
                kind, value = events.get()
                if kind == "token":
                    yield ChatGenerationChunk(message=AIMessageChunk(content=value))
                elif kind == "done":
                    yield self._final_chunk(value)
                    return
                else:
                    raise value
        finally:
            job.cancel.set()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text: list[str] = []
        final: ChatGenerationChunk | None = None
        for chunk in self._stream(messages, stop, run_manager, **kwargs):
            text.append(chunk.message.text)
            final = chunk
        assert final is not None
        message = AIMessage(
            content="".join(text),
            usage_metadata=getattr(final.message, "usage_metadata", None),
            response_metadata=final.message.response_metadata,
        )
        return ChatResult(generations=[ChatGeneration(message=message)])
