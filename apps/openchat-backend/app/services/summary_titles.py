"""Summary titles: after a conversation's first exchange, its model names it in the background.

The reply is never delayed: its `end` event closes the stream, and the first message cut short
(`make_title`) is stored as the title meanwhile, and kept when no summary comes (failure, a
timeout, an empty or unusable answer, or a busy engine). The summary runs on the reply's own
model, only in a free slot of its engine, and gives the slot up when a user's request needs
it (app/llm/engine.py). It is stored even when the client has gone, unless the title was
changed meanwhile (a rename).
"""

import asyncio
import logging

import anyio
from langchain_core.language_models import BaseChatModel
from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.llm.engine import EngineBusyError, EngineUnavailableError
from app.llm.registry import ModelInfo, ModelRegistry
from app.services.background import BackgroundTasks
from app.services.titles import summarize_title

log = logging.getLogger(__name__)

# A summary is about 24 tokens after a short prompt: seconds, or a minute on a crowded CPU.
# It holds no one up meanwhile (a user takes its slot over); this bounds a stuck one.
SUMMARY_TIMEOUT_S = 120.0


class SummaryTitles:
    def __init__(self, registry: ModelRegistry, sessions: sessionmaker[Session], tasks: BackgroundTasks) -> None:
        self.registry = registry
        self.sessions = sessions
        self.tasks = tasks

    def start(
        self,
        conversation_id: str,
        fallback: str,
        model: ModelInfo,
        chat_model: BaseChatModel,
        question: str,
        answer: str,
    ) -> "asyncio.Task[str | None]":
        """Write the summary title of a conversation whose title is now `fallback`; the task's
        result is the stored summary, or None when the fallback stays."""

        async def write() -> str | None:
            try:
                title = await self._summarize(model, chat_model, question, answer)
                if title is None or title == fallback:
                    return None

                def store() -> bool:
                    with self.sessions() as session:
                        return crud.replace_title(session, conversation_id, fallback, title)

                return title if await anyio.to_thread.run_sync(store) else None
            except Exception:  # a title is never worth an error: the fallback stays
                log.exception("Could not write the summary title of %s", conversation_id)
                return None

        return self.tasks.start(write())

    async def _summarize(self, model: ModelInfo, chat_model: BaseChatModel, question: str, answer: str) -> str | None:
        title = None
        with anyio.CancelScope() as user_came:
            try:
                with anyio.fail_after(SUMMARY_TIMEOUT_S):
                    async with self.registry.reserve_background(model, user_came.cancel):
                        title = await summarize_title(chat_model, question, answer)
            except (EngineBusyError, EngineUnavailableError) as error:
                log.info("No summary title: %s", error)
            except TimeoutError:
                log.warning("No summary title: %s did not write one within %.0f s", model.id, SUMMARY_TIMEOUT_S)
        if user_came.cancelled_caught and title is None:
            log.info("No summary title: a user's request took the slot of %s", model.id)
        return title
