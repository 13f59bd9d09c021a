"""Turns a model id into a LangChain chat model, for every configured provider.

- `local`: GGUF files in the models folder, run in-process (app/llm/local.py).
- `together`: Together AI, when TOGETHER_API_KEY is set (ids `together/<model>`).
- `openai-compatible`: any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, LM
  Studio) when OPENAI_COMPATIBLE_BASE_URL is set (ids `openai-compatible/<model>`).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from app.core.config import Settings
from app.llm.bundled import BUNDLED_BY_FILENAME
from app.llm.local import ChatLocalLlama, GgufInfo, LocalEngine, read_gguf_info

log = logging.getLogger(__name__)

Provider = Literal["local", "together", "openai-compatible"]
TOGETHER_PREFIX = "together/"
OPENAI_COMPATIBLE_PREFIX = "openai-compatible/"
REMOTE_LIST_TTL_SECONDS = 60.0
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


# Loaded local models stay warm for the life of the process, shared by every app instance.
_ENGINES: dict[tuple[Path, int, int], LocalEngine] = {}
_ENGINES_LOCK = threading.Lock()
_GGUF_INFO: dict[tuple[Path, int, int], GgufInfo] = {}


def local_engines() -> list[LocalEngine]:
    return list(_ENGINES.values())


@atexit.register
def _close_engines() -> None:
    for engine in local_engines():
        engine.close()


def _gguf_info(path: Path) -> GgufInfo:
    stat = path.stat()
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _GGUF_INFO:
        _GGUF_INFO[key] = read_gguf_info(path)
    return _GGUF_INFO[key]


class ModelRegistry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._remote_cache: dict[str, tuple[float, list[ModelInfo]]] = {}
        self._remote_lock = asyncio.Lock()

    # -- listing ---------------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        models = await anyio.to_thread.run_sync(self._local_models)
        if self.settings.together_api_key:
            models += await self._remote_models("together")
        if self.settings.openai_compatible_base_url:
            models += await self._remote_models("openai-compatible")
        default_id = self.default_model_id(models)
        return [ModelInfo(**{**m.__dict__, "default": m.id == default_id}) for m in models]

    def default_model_id(self, models: list[ModelInfo]) -> str | None:
        ids = [m.id for m in models]
        if self.settings.default_model in ids:
            return self.settings.default_model
        return ids[0] if ids else None

    async def get(self, model_id: str | None) -> ModelInfo | None:
        models = await self.list_models()
        wanted = model_id or self.default_model_id(models)
        return next((m for m in models if m.id == wanted), None)

    def _local_models(self) -> list[ModelInfo]:
        folder = self.settings.models_dir
        if not folder.is_dir():
            return []
        models = []
        for path in sorted(folder.glob("*.gguf")):
            bundled = BUNDLED_BY_FILENAME.get(path.name)
            try:
                info = _gguf_info(path)
            except (ValueError, OSError) as error:
                log.warning("Skipping %s: not a readable GGUF model (%s)", path.name, error)
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

    # -- chat models -----------------------------------------------------------------------

    def engine(self, info: ModelInfo) -> LocalEngine:
        assert info.path is not None
        key = (info.path, self.settings.local_context_tokens, self.settings.local_threads)
        with _ENGINES_LOCK:
            engine = _ENGINES.get(key)
            if engine is None:
                engine = LocalEngine(
                    info.path,
                    context_tokens=self.settings.local_context_tokens,
                    threads=self.settings.local_threads,
                    queue_size=self.settings.queue_size,
                )
                _ENGINES[key] = engine
            engine.queue_size = self.settings.queue_size
            return engine

    def chat_model(self, info: ModelInfo, options: ChatOptions) -> BaseChatModel:
        if info.provider == "local":
            return ChatLocalLlama(
                model_name=info.id,
                engine=self.engine(info),
                temperature=options.temperature,
                top_p=options.top_p,
                max_tokens=options.max_tokens,
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
            )
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=info.remote_name or info.id,
            base_url=self.settings.openai_compatible_base_url,
            # Local servers often need no key, but the client insists on one.
            api_key=self.settings.openai_compatible_api_key or "not-needed",
            temperature=options.temperature,
            top_p=options.top_p,
            max_completion_tokens=options.max_tokens,
            # Many OpenAI-compatible servers (llama.cpp, older vLLM) only read `max_tokens`.
            extra_body={"max_tokens": options.max_tokens},
            stream_usage=True,
            max_retries=1,
        )

    def count_tokens(self, info: ModelInfo, messages: list[BaseMessage]) -> int:
        """Tokens the prompt will take (blocking: exact for local models, estimated otherwise)."""
        if info.provider == "local":
            from app.llm.local import to_llama_messages

            return len(self.engine(info).prompt_tokens(to_llama_messages(messages)))
        # About 3.5 characters a token for English and code, plus the chat template's overhead.
        return sum(math.ceil(len(m.text) / 3.5) + 6 for m in messages)

    def context_window(self, info: ModelInfo) -> int:
        return info.context_length
