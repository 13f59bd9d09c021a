"""Turns a model id into a LangChain chat model, for every configured provider.

- `local`: GGUF files in the models folder, each served by its own supervised llama-server
  (app/llm/engine.py) and reached through the same OpenAI-compatible chat model as below.
- `together`: Together AI, when TOGETHER_API_KEY is set (ids `together/<model>`).
- `openai-compatible`: any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, LM
  Studio) when OPENAI_COMPATIBLE_BASE_URL is set (ids `openai-compatible/<model>`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
import httpx2  # the openai SDK's HTTP client
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from app.core.config import Settings
from app.llm.bundled import BUNDLED_BY_FILENAME, BUNDLED_BY_ID
from app.llm.engine import EngineProcess, EngineSettings, LocalEngines
from app.llm.gguf_info import GgufInfo, read_gguf_info
from app.llm.openai_compatible import (
    SILENCE_TIMEOUT_S,
    ProgressChatOpenAI,
    loopback_http_client,
    remote_http_client,
)

log = logging.getLogger(__name__)

Provider = Literal["local", "together", "openai-compatible"]
TOGETHER_PREFIX = "together/"
OPENAI_COMPATIBLE_PREFIX = "openai-compatible/"
REMOTE_LIST_TTL_SECONDS = 60.0
# Every chat looks its model up: the models folder is read again at most this often (a model
# file dropped in shows up within it).
LOCAL_LIST_TTL_SECONDS = 5.0
# Chat models built for recent (model, options, endpoint): building ChatOpenAI (with its openai
# clients) took about a millisecond per request; the models are stateless, so they are shared.
CHAT_MODEL_CACHE_SIZE = 64
# Generous bounds on what a chat template adds (Qwen2.5's adds 5 tokens per message and 20 for its
# default system prompt): see prompt_tokens_bound.
TEMPLATE_TOKENS_PER_MESSAGE = 16
TEMPLATE_TOKENS_AT_MOST = 512
DEFAULT_REMOTE_CONTEXT = 8192

# Shown when Together's model list cannot be fetched: strong open chat models it serves.
TOGETHER_FALLBACK_MODELS: tuple[tuple[str, str, int], ...] = (
    ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "Llama 3.3 70B Instruct Turbo", 131072),
    ("Qwen/Qwen2.5-72B-Instruct-Turbo", "Qwen2.5 72B Instruct Turbo", 32768),
    ("Qwen/Qwen2.5-Coder-32B-Instruct", "Qwen2.5 Coder 32B Instruct", 32768),
    ("deepseek-ai/DeepSeek-V3", "DeepSeek V3", 131072),
    ("mistralai/Mistral-Small-24B-Instruct-2501", "Mistral Small 3 24B Instruct", 32768),
    ("google/gemma-2-27b-it", "Gemma 2 27B", 8192),
)


@dataclass(frozen=True)
class ModelInfo:
    id: str
    name: str
    provider: Provider
    context_length: int
    default: bool = False
    path: Path | None = None  # local models only
    remote_name: str | None = None  # the provider's own id for remote models

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "provider": self.provider,
            "context_length": self.context_length,
            "default": self.default,
        }


@dataclass(frozen=True)
class ChatOptions:
    temperature: float
    top_p: float
    max_tokens: int
    # Ask a local engine how much of the prompt it has read, before the first token. Only worth
    # it for a prompt longer than one of its batches (app/services/chat.py shows nothing for a
    # shorter one), and not free: the engine's first token came ~2.4 ms later when asked.
    prompt_progress: bool = False


ROLE_BY_TYPE = {"human": "user", "ai": "assistant", "system": "system"}
_GGUF_INFO: dict[tuple[Path, int, int], GgufInfo] = {}  # file metadata, by path, size and mtime

# Chat models are built on the event loop. The first one built imports langchain_openai, the
# openai SDK's lazily loaded parts and its HTTP stack: 1-7 s of CPU on a busy 2-core machine,
# during which the server answered nothing, /healthz included (make stress). Done once here,
# when the app is imported, before it serves.
ProgressChatOpenAI(model="preload", base_url="http://127.0.0.1/v1", api_key="preload", max_retries=0)


def engine_settings(settings: Settings) -> EngineSettings:
    return EngineSettings(
        binary=settings.engine_binary,
        threads=settings.local_threads,
        slots=settings.local_slots,
        context_tokens=settings.local_context_tokens,
        cache_ram_mib=settings.engine_cache_mib,
        queue_size=settings.queue_size,
        log_dir=settings.data_dir / "logs",
    )


def to_openai_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    result = []
    for message in messages:
        role = ROLE_BY_TYPE.get(message.type)
        if role is None:
            raise ValueError(f"Unsupported message type: {message.type}")
        result.append({"role": role, "content": message.text})
    return result


def gguf_info(path: Path) -> GgufInfo:
    stat = path.stat()
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _GGUF_INFO:
        _GGUF_INFO[key] = read_gguf_info(path)
    return _GGUF_INFO[key]


def file_error(error: ValueError | OSError) -> str:
    """What is wrong with a model file, in words (gguf_info's own, or the system's)."""
    if isinstance(error, FileNotFoundError):
        return "file is missing (a link to a file that is gone?)"
    if isinstance(error, OSError):
        return f"file cannot be read ({error.strerror or error})"
    return str(error)


class ModelRegistry:
    def __init__(self, settings: Settings, engines: LocalEngines | None = None) -> None:
        self.settings = settings
        self.engines = engines or LocalEngines(engine_settings(settings))
        self._remote_cache: dict[str, tuple[float, list[ModelInfo]]] = {}
        self._remote_lock = asyncio.Lock()
        self._local_cache: tuple[float, list[ModelInfo]] | None = None
        # Model files in the models folder that cannot be used: model id -> what is wrong with
        # its file (logged once when found, and shown by /readyz). Their models are not listed.
        self.model_problems: dict[str, str] = {}
        self._chat_models: OrderedDict[tuple[Any, ...], BaseChatModel] = OrderedDict()
        self._engine_http: httpx2.AsyncClient | None = None  # shared by the local engines' chat models
        self._remote_http: httpx2.AsyncClient | None = None  # shared by the openai-compatible ones

    # -- listing ---------------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        models = await self._recent_local_models()
        if self.settings.together_api_key:
            models += await self._remote_models("together")
        if self.settings.openai_compatible_base_url:
            models += await self._remote_models("openai-compatible")
        default_id = self.default_model_id(models)
        return [ModelInfo(**{**m.__dict__, "default": m.id == default_id}) for m in models]

    def default_model_id(self, models: list[ModelInfo]) -> str | None:
        # A local model whose engine was given up on is still listed (chat says why), never the default.
        failed = {e.model_id for e in self.engines.all() if e.state == "failed"}
        ids = [m.id for m in models if m.id not in failed]
        if self.settings.default_model in ids:
            return self.settings.default_model
        return ids[0] if ids else None

    async def get(self, model_id: str | None) -> ModelInfo | None:
        models = await self.list_models()
        wanted = model_id or self.default_model_id(models)
        return next((m for m in models if m.id == wanted), None)

    async def _recent_local_models(self) -> list[ModelInfo]:
        if not self.settings.local_models:  # OPENCHAT_LOCAL_MODELS=off: remote providers only
            return []
        now = time.monotonic()
        if self._local_cache is None or now - self._local_cache[0] >= LOCAL_LIST_TTL_SECONDS:
            self._local_cache = (now, await anyio.to_thread.run_sync(self._local_models))
        return list(self._local_cache[1])

    def _local_models(self) -> list[ModelInfo]:
        folder = self.settings.models_dir
        models = []
        problems: dict[str, str] = {}
        for path in sorted(folder.glob("*.gguf")) if folder.is_dir() else []:
            bundled = BUNDLED_BY_FILENAME.get(path.name)
            model_id = bundled.id if bundled else path.stem
            try:
                info = gguf_info(path)
                if bundled and path.stat().st_size != bundled.size:
                    raise ValueError(
                        f"file is incomplete ({path.stat().st_size:,} of {bundled.size:,} bytes): "
                        "run `make setup` to assemble it again"
                    )
            except (ValueError, OSError) as error:
                problems[model_id] = f"{path.name}: {file_error(error)}"
                continue
            models.append(
                ModelInfo(
                    id=bundled.id if bundled else path.stem,
                    name=bundled.name if bundled else info.name,
                    provider="local",
                    # The window we actually run with: the model's own, capped by configuration.
                    context_length=min(info.context_length, self.settings.local_context_tokens),
                    path=path,
                )
            )
        default = BUNDLED_BY_ID.get(self.settings.default_model)
        if default and not (folder / default.filename).exists() and default.id not in problems:
            problems[default.id] = f"{default.filename}: file is missing: run `make setup` to assemble it"
        for model_id, problem in problems.items():
            if self.model_problems.get(model_id) != problem:  # listed every few seconds: log it once
                log.error("Model %s cannot be used and is not listed: %s", model_id, problem)
        self.model_problems = problems
        # The bundled default first, then the rest by name.
        models.sort(key=lambda m: (m.id != self.settings.default_model, m.name.lower()))
        return models

    async def _remote_models(self, provider: Literal["together", "openai-compatible"]) -> list[ModelInfo]:
        async with self._remote_lock:
            cached = self._remote_cache.get(provider)
            if cached and time.monotonic() - cached[0] < REMOTE_LIST_TTL_SECONDS:
                return cached[1]
            try:
                models = await self._fetch_remote_models(provider)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
                log.warning("Could not list %s models: %s", provider, error)
                models = self._fallback_models(provider)
            self._remote_cache[provider] = (time.monotonic(), models)
            return models

    def _remote_endpoint(self, provider: str) -> tuple[str, str | None, str]:
        if provider == "together":
            return self.settings.together_base_url, self.settings.together_api_key, TOGETHER_PREFIX
        assert self.settings.openai_compatible_base_url
        return (
            self.settings.openai_compatible_base_url,
            self.settings.openai_compatible_api_key,
            OPENAI_COMPATIBLE_PREFIX,
        )

    async def _fetch_remote_models(self, provider: Literal["together", "openai-compatible"]) -> list[ModelInfo]:
        base_url, api_key, prefix = self._remote_endpoint(provider)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(f"{base_url.rstrip('/')}/models", headers=headers)
            response.raise_for_status()
            body = response.json()
        entries = body if isinstance(body, list) else body["data"]
        models = []
        for entry in entries:
            if entry.get("type") not in (None, "chat"):  # Together lists embeddings, images... too
                continue
            context = (
                entry.get("context_length")
                or entry.get("max_model_len")  # vLLM
                or (entry.get("meta") or {}).get("n_ctx_train")  # llama.cpp server
                or DEFAULT_REMOTE_CONTEXT
            )
            models.append(
                ModelInfo(
                    id=f"{prefix}{entry['id']}",
                    name=entry.get("display_name") or entry["id"],
                    provider=provider,
                    context_length=int(context),
                    remote_name=entry["id"],
                )
            )
        return models

    def _fallback_models(self, provider: str) -> list[ModelInfo]:
        if provider != "together":
            return []  # an unknown server's models cannot be guessed
        return [
            ModelInfo(
                id=f"{TOGETHER_PREFIX}{model}",
                name=name,
                provider="together",
                context_length=context,
                remote_name=model,
            )
            for model, name, context in TOGETHER_FALLBACK_MODELS
        ]

    # -- chat models ----------------------------------------------------------------------

    def engine(self, info: ModelInfo) -> EngineProcess:
        assert info.path is not None
        engine = self.engines.get(info.id, info.path, gguf_info(info.path))
        engine.start()
        return engine

    def is_engine_backed(self, info: ModelInfo) -> bool:
        return info.provider == "local" and info.path is not None

    @asynccontextmanager
    async def reserve(self, info: ModelInfo) -> AsyncIterator[EngineProcess | None]:
        """Hold a place on the model's engine for one generation (local models; remote ones need none).

        Raises EngineBusyError when its slots and waiting line are full, EngineUnavailableError
        while it (re)starts or after it was given up on.
        """
        if not self.is_engine_backed(info):
            yield None
            return
        engine = self.engine(info)
        await engine.ready()
        engine.admit()
        started = time.monotonic()
        try:
            yield engine
        finally:
            engine.release(time.monotonic() - started)

    @asynccontextmanager
    async def reserve_background(self, info: ModelInfo, give_up: Callable[[], None]) -> AsyncIterator[None]:
        """Hold a free slot of the model's engine for background work (remote models need none),
        or raise at once: EngineBusyError when none is free, EngineUnavailableError when the engine
        is not ready. `give_up` is called when a user's request takes the slot over."""
        if not self.is_engine_backed(info):
            yield
            return
        engine = self.engine(info)
        await engine.ready(wait_s=0)
        key = engine.admit_background(give_up)
        try:
            yield
        finally:
            engine.release_background(key)

    def chat_model(self, info: ModelInfo, options: ChatOptions) -> BaseChatModel:
        """The LangChain chat model for `info` with `options` (shared by requests that ask the same)."""
        engine = self.engine(info) if self.is_engine_backed(info) else None
        # A restarted engine listens on another port with another key: a new model then.
        key = (info.id, info.provider, options, engine.base_url if engine else None, engine.api_key if engine else None)
        model = self._chat_models.get(key)
        if model is None:
            model = self._build_chat_model(info, options)
            self._chat_models[key] = model
            if len(self._chat_models) > CHAT_MODEL_CACHE_SIZE:
                self._chat_models.popitem(last=False)
        else:
            self._chat_models.move_to_end(key)
        return model

    def _build_chat_model(self, info: ModelInfo, options: ChatOptions) -> BaseChatModel:
        if self.is_engine_backed(info):
            engine = self.engine(info)
            return self._openai_compatible(
                model=info.id,
                base_url=f"{engine.base_url}/v1",
                api_key=engine.api_key,
                options=options,
                max_retries=0,  # a dead engine is being restarted: ChatService._start asks again
                http_async_client=self._engine_http_client(),
                # It streams how much of a long prompt it has read before the first token.
                extra_body={"return_progress": True} if options.prompt_progress else None,
            )
        if info.provider == "together":
            from langchain_together import ChatTogether

            return ChatTogether(
                model=info.remote_name or info.id,
                api_key=self.settings.together_api_key,
                base_url=self.settings.together_base_url,
                temperature=options.temperature,
                top_p=options.top_p,
                max_tokens=options.max_tokens,
                stream_usage=True,
                max_retries=1,
                timeout=self.settings.upstream_timeout_s,
            )
        return self._openai_compatible(
            model=info.remote_name or info.id,
            base_url=self.settings.openai_compatible_base_url,
            # Local servers often need no key, but the client insists on one.
            api_key=self.settings.openai_compatible_api_key or "not-needed",
            options=options,
            max_retries=1,
            timeout=self.settings.upstream_timeout_s,
            http_async_client=self._remote_http_client(),
        )

    @staticmethod
    def _openai_compatible(
        model: str,
        base_url: str | None,
        api_key: str,
        options: ChatOptions,
        max_retries: int,
        http_async_client: httpx2.AsyncClient,
        extra_body: dict[str, Any] | None = None,
        timeout: float | None = None,  # None: a local engine's (SILENCE_TIMEOUT_S)
    ) -> BaseChatModel:
        return ProgressChatOpenAI(
            model=model,
            base_url=base_url,
            api_key=api_key,
            temperature=options.temperature,
            top_p=options.top_p,
            max_completion_tokens=options.max_tokens,
            # Many OpenAI-compatible servers (llama.cpp, older vLLM) only read `max_tokens`.
            extra_body={"max_tokens": options.max_tokens, **(extra_body or {})},
            stream_usage=True,
            max_retries=max_retries,
            timeout=timeout or SILENCE_TIMEOUT_S,
            http_async_client=http_async_client,
        )

    def prompt_tokens_bound(self, info: ModelInfo, messages: list[BaseMessage]) -> int | None:
        """For a local model, a number of tokens its prompt surely does not exceed, found without
        asking its engine (None for other models, whose count_tokens is as cheap). A token of the
        models' tokenizers stands for at least one byte of text; the chat template adds its own
        tokens around each message and at the start (a default system prompt, say)."""
        if not self.is_engine_backed(info):
            return None
        text_bytes = sum(len(m.text.encode()) for m in messages)
        return text_bytes + TEMPLATE_TOKENS_PER_MESSAGE * len(messages) + TEMPLATE_TOKENS_AT_MOST

    async def count_tokens(self, info: ModelInfo, messages: list[BaseMessage]) -> int:
        """Tokens the prompt will take: exact for local models (the engine's template and
        tokenizer), estimated for remote ones."""
        if self.is_engine_backed(info):
            return await self.engine(info).count_prompt_tokens(to_openai_messages(messages))
        # About 3.5 characters a token for English and code, plus the chat template's overhead.
        return sum(math.ceil(len(m.text) / 3.5) + 6 for m in messages)

    async def count_message_tokens(self, info: ModelInfo, messages: list[BaseMessage]) -> list[int]:
        """Each message's tokens in a prompt (its text and the chat template's around it), each
        counted once: what trimming a long history adds up (app/services/chat.py)."""
        if self.is_engine_backed(info):
            return await self.engine(info).count_message_tokens(to_openai_messages(messages))
        # A remote model's count is a sum over its messages: a message alone is its share.
        return [await self.count_tokens(info, [message]) for message in messages]

    def context_window(self, info: ModelInfo) -> int:
        return info.context_length

    def _engine_http_client(self) -> httpx2.AsyncClient:
        if self._engine_http is None:
            self._engine_http = loopback_http_client(SILENCE_TIMEOUT_S)
        return self._engine_http

    def _remote_http_client(self) -> httpx2.AsyncClient:
        if self._remote_http is None:
            base_url = self.settings.openai_compatible_base_url or ""
            self._remote_http = remote_http_client(base_url, self.settings.upstream_timeout_s)
        return self._remote_http

    async def aclose_clients(self) -> None:
        """Close the chat models' HTTP clients (at the app's shutdown: they belong to the event
        loop). The cached chat models go with them; they are made again when needed."""
        clients = [self._engine_http, self._remote_http]
        self._engine_http = self._remote_http = None
        self._chat_models.clear()
        for client in clients:
            if client is not None:
                await client.aclose()

    def close(self) -> None:
        self.engines.close()
