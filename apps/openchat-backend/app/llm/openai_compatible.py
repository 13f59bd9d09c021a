"""LangChain's ChatOpenAI, keeping the prompt progress that llama.cpp's server streams."""

from typing import Any

from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI


class ProgressChatOpenAI(ChatOpenAI):
    """ChatOpenAI for OpenAI-compatible servers. llama.cpp's llama-server, asked with
    `"return_progress": true`, streams how much of the prompt it has read as `prompt_progress`
    ({total, cache, processed, time_ms}) in chunks before the first token; ChatOpenAI drops
    keys it does not know, so this copies that one into the chunk's response_metadata."""

    def _convert_chunk_to_generation_chunk(
        self, chunk: dict[str, Any], default_chunk_class: type, base_generation_info: dict[str, Any] | None
    ) -> ChatGenerationChunk | None:
        generation = super()._convert_chunk_to_generation_chunk(chunk, default_chunk_class, base_generation_info)
        progress = chunk.get("prompt_progress")
        if generation is not None and isinstance(progress, dict):
            generation.message.response_metadata["prompt_progress"] = progress
        return generation
