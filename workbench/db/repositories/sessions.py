"""Conversations as a researcher browses them: filtered, searched, sorted and paged in the database.

    page = await SessionsRepo(conn).browse(SessionQuery(kind="simulated", text="pizza"))

What a caller sees is what RLS lets them read: users their own conversations,
researchers and admins every participant's. A filter only narrows that. The
participant's display name comes with a row only where profiles are readable
(their own, or an admin's view); otherwise the row shows a short id.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from workbench.db.models import ConversationStatus
from workbench.db.repositories._base import Repo

Kind = Literal["all", "human", "simulated"]
Sort = Literal["newest", "oldest", "most turns"]

_ORDER: dict[Sort, str] = {
    "newest": "c.started_at desc, c.id",
    "oldest": "c.started_at asc, c.id",
    "most turns": "turns desc, c.started_at desc, c.id",
}


class SessionQuery(BaseModel):
    """What to show: every field narrows; the defaults show everything readable, newest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner_id: UUID | None = None  # one participant's conversations
    participant: str = Field("", max_length=80)  # a display name (admins see names) or id start
    since: date | None = None
    until: date | None = None  # inclusive
    prompt: str = Field("", max_length=64)  # a prompt slug
    stack: str = Field("", max_length=64)
    arm: str = Field("", max_length=40)  # an experiment arm's label
    kind: Kind = "all"
    status: ConversationStatus | None = None
    text: str = Field("", max_length=200)  # words in any turn
    corrected_only: bool = False  # with at least one corrected transcript
    tag: str = Field("", max_length=40)  # annotated with this tag (researchers)
    max_rating: int | None = Field(None, ge=1, le=5)  # rated this or lower by someone
    sort: Sort = "newest"
    page: int = Field(0, ge=0)
    page_size: int = Field(25, ge=1, le=200)


class SessionRow(BaseModel):
    """One conversation in the list."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    owner_id: UUID
    participant: str
    started_at: datetime
    status: ConversationStatus
    stack: str | None
    prompt: str | None  # slug@version
    arm: str | None
    simulated: str | None  # suite/scenario of a simulated call
    passed: bool | None  # its verdict
    turns: int
    corrections: int
    rating: float | None  # the mean of its annotations' ratings (researchers)
    tags: list[str]  # every tag its annotations carry (researchers)


class SessionPage(BaseModel):
    """One page of the list and how many match in all."""

    rows: list[SessionRow]
    total: int
    query: SessionQuery

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.page_size))


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SessionsRepo(Repo):
    async def browse(self, query: SessionQuery) -> SessionPage:
        """The page of readable conversations `query` asks for, and how many match in all.

        The page's ids are found first (filters, order, limit), and only its rows get
        their turn counts, annotations and labels: at 10^5 conversations, describing
        every match to count them cost seconds (bench/history_browsing.py).
        """
        where, params = _conditions(query)
        params |= {"limit": query.page_size, "offset": query.page * query.page_size}
        turns = "(select count(*) from public.turns t where t.conversation_id = c.id)"
        rows = await self._all(
            SessionRow,
            f"""with page as (
                  select c.id, c.started_at, {turns if query.sort == "most turns" else "0"} as turns
                  {_from(where)}
                  order by {_ORDER[query.sort]}
                  limit %(limit)s offset %(offset)s
                )
                select c.id, c.owner_id,
                       coalesce(p.display_name, left(c.owner_id::text, 8)) as participant,
                       c.started_at, c.status, c.model_specs ->> 'name' as stack,
                       sp.slug || '@' || pv.version as prompt, ev.label as arm,
                       sc.suite || '/' || sc.scenario as simulated, sc.passed,
                       {turns}::int as turns,
                       (select count(*) from public.turns t
                         where t.conversation_id = c.id and t.reference_text is not null)::int
                         as corrections,
                       (select round(avg(a.rating), 1)::float8 from public.annotations a
                         where a.conversation_id = c.id) as rating,
                       array(select distinct g.name from public.annotations a
                             join public.annotation_labels l on l.annotation_id = a.id
                             join public.annotation_tags g on g.id = l.tag_id
                             where a.conversation_id = c.id order by g.name) as tags
                from page join public.conversations c on c.id = page.id {_JOINS}
                order by {_ORDER[query.sort].replace("turns desc", "page.turns desc")}""",
            params,
        )
        counted = await self._all(_Count, f"select count(*)::int as n {_from(where)}", params)
        return SessionPage(rows=rows, total=counted[0].n, query=query)


class _Count(BaseModel):
    n: int


# What describes a conversation (left joins: RLS may hide a part, e.g. profiles from researchers).
_JOINS = """
    left join public.profiles p on p.id = c.owner_id
    left join public.prompt_versions pv on pv.id = c.prompt_version_id
    left join public.system_prompts sp on sp.id = pv.prompt_id
    left join public.experiment_variants ev on ev.id = c.variant_id
    left join public.simulated_calls sc on sc.conversation_id = c.id
"""


def _from(where: list[str]) -> str:
    """The readable conversations with what describes them, filtered."""
    return f"from public.conversations c {_JOINS} where {' and '.join(where) or 'true'}"


def _conditions(query: SessionQuery) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions and their parameters for every filter `query` sets."""
    where: list[str] = []
    params: dict[str, Any] = {}

    def add(condition: str, **values: Any) -> None:
        where.append(condition)
        params.update(values)

    if query.owner_id:
        add("c.owner_id = %(owner)s", owner=query.owner_id)
    if query.participant.strip():
        add(
            "(p.display_name ilike %(who)s or c.owner_id::text like %(who_id)s)",
            who=_like(query.participant.strip()),
            who_id=query.participant.strip().lower() + "%",
        )
    if query.since:
        add("c.started_at >= %(since)s", since=query.since)
    if query.until:
        add("c.started_at < %(until)s", until=query.until + timedelta(days=1))
    if query.prompt.strip():
        add("sp.slug = %(prompt)s", prompt=query.prompt.strip())
    if query.stack.strip():
        add("c.model_specs ->> 'name' = %(stack)s", stack=query.stack.strip())
    if query.arm.strip():
        add("ev.label = %(arm)s", arm=query.arm.strip())
    if query.kind != "all":
        where.append(
            "sc.conversation_id is " + ("not null" if query.kind == "simulated" else "null")
        )
    if query.status:
        add("c.status = %(status)s", status=query.status)
    if query.text.strip():
        # Through the database's own search: under RLS a turn's policy would be tested
        # on every turn before the pattern, and the trigram index go unused.
        add(
            "c.id in (select public.conversations_saying(%(text)s))",
            text=_like(query.text.strip()),
        )
    if query.corrected_only:
        where.append(
            """exists (select 1 from public.turns t where t.conversation_id = c.id
                       and t.reference_text is not null)"""
        )
    if query.tag.strip():
        add(
            """exists (select 1 from public.annotations a
                       join public.annotation_labels l on l.annotation_id = a.id
                       join public.annotation_tags g on g.id = l.tag_id
                       where a.conversation_id = c.id and g.name = %(tag)s)""",
            tag=query.tag.strip().lower(),
        )
    if query.max_rating is not None:
        add(
            """exists (select 1 from public.annotations a
                       where a.conversation_id = c.id and a.rating <= %(max_rating)s)""",
            max_rating=query.max_rating,
        )
    return where, params
