"""The chat model as a livekit-agents LLM: the session's history in, the reply's pieces out.

Each reply passes the reply guard (`workbench.reply_guard`): an attempt that only
copies the caller's turn or an earlier reply is dropped unspoken and generated
again, warmer.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from livekit.agents import APIConnectOptions, llm, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from agent.adapters import SpecLabels
from workbench.models import ChatMessage, ChatModel
from workbench.models.base import GenerationParams
from workbench.reply_guard import ReplyGuard, Verdict, retry_params

log = logging.getLogger("workbench.agent")


def to_messages(chat_ctx: llm.ChatContext) -> list[ChatMessage]:
    """The chat context as the model interface's messages, one message per turn of a speaker.

    A caller who pauses mid-sentence leaves two user messages in a row (the turn
    detector ended the first part, no reply was spoken before the second); they are
    one turn, and chat templates expect the roles to alternate (Gemma's refuses
    otherwise), so consecutive messages of one role are joined.
    """
    roles: dict[str, Literal["system", "user", "assistant"]] = {
        "system": "system",
        "developer": "system",
        "user": "user",
        "assistant": "assistant",
    }
    messages: list[ChatMessage] = []
    for item in chat_ctx.items:
        if not isinstance(item, llm.ChatMessage):
            continue  # tool calls and handoffs are not text the model reads
        role = roles.get(item.role)
        text = (item.text_content or "").strip()
        if not role or not text:
            continue
        if messages and messages[-1].role == role:
            messages[-1] = ChatMessage(role=role, content=f"{messages[-1].content} {text}")
        else:
            messages.append(ChatMessage(role=role, content=text))
    return messages


class WorkbenchLLM(SpecLabels, llm.LLM[Any]):
    """A workbench ChatModel as a livekit LLM (text only, no tools).

    `guard_attempts`: how many times a reply that only copies the caller's turn
    or an earlier reply is generated again (workbench/reply_guard.py); 1: never.
    """

    _model: ChatModel

    def __init__(self, model: ChatModel, *, guard_attempts: int = 1) -> None:
        super().__init__()
        self._model = model
        self.guard_attempts = guard_attempts

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[Any] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[Any] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return _WorkbenchLLMStream(
            self,
            self._model,
            chat_ctx=chat_ctx,
            conn_options=conn_options,
            guard_attempts=self.guard_attempts,
        )


class _WorkbenchLLMStream(llm.LLMStream):
    def __init__(
        self,
        owner: WorkbenchLLM,
        model: ChatModel,
        *,
        chat_ctx: llm.ChatContext,
        conn_options: APIConnectOptions,
        guard_attempts: int,
    ) -> None:
        super().__init__(owner, chat_ctx=chat_ctx, tools=[], conn_options=conn_options)
        self._chat_model = model
        self._guard_attempts = guard_attempts

    async def _run(self) -> None:
        request_id = utils.shortuuid("wb_")
        messages = to_messages(self._chat_ctx)
        said = messages[-1].content if messages and messages[-1].role == "user" else ""
        earlier = [m.content for m in messages if m.role == "assistant"]
        attempts = self._guard_attempts
        for attempt in range(attempts):
            guard = ReplyGuard(said, earlier) if attempt < attempts - 1 else None
            params = retry_params(self._chat_model.default_params, attempt)
            if await self._attempt(request_id, messages, params, guard):
                return
            log.info("reply attempt %d copied the caller or an earlier reply; again", attempt + 1)

    async def _attempt(
        self,
        request_id: str,
        messages: list[ChatMessage],
        params: GenerationParams,
        guard: ReplyGuard | None,
    ) -> bool:
        """Stream one attempt; False when the guard dropped it as a copy (nothing was sent)."""
        held: list[str] = []

        def send(pieces: list[str]) -> None:
            for piece in pieces:
                self._event_ch.send_nowait(
                    llm.ChatChunk(
                        id=request_id, delta=llm.ChoiceDelta(role="assistant", content=piece)
                    )
                )

        stream = self._chat_model.stream_reply(messages, params=params)
        try:
            async for piece in stream:
                verdict = guard.feed(piece) if guard else Verdict.RELEASE
                if verdict is Verdict.RETRY:
                    return False
                held.append(piece)
                if verdict is Verdict.RELEASE:
                    send(held)
                    held = []
        finally:
            await stream.aclose()  # an interrupted reply stops the model at the next token
        if guard and guard.finish() is Verdict.RETRY:
            return False
        send(held)
        return True
