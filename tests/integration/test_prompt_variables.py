"""Prompt variables: a version's defaults, an arm's values, a staff room's values, as the agent fills them.

The database refuses a version with a variable and no default and values for a
variable a version does not have; the agent's `session_prompt` fills each
variable from the room (staff only), else the arm, else the default, and the
participant's display name for user_name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from agent.conversation import session_prompt
from tests.support.personas import Persona, create_user, session_as
from workbench.db.errors import InvalidInput
from workbench.db.repositories import PromptsRepo

pytestmark = pytest.mark.integration

BODY = "You are a {{tone}} assistant for {{user_name}}, speaking about {{topic}}."


@pytest.fixture(scope="module")
def people(app_db: str, jwt_secret: str) -> dict[str, Persona]:
    with psycopg.connect(app_db, autocommit=True) as conn:
        return {
            "admin": create_user(
                conn, name="adm", role="admin", jwt_secret=jwt_secret, display_name="Ada"
            ),
            "researcher": create_user(
                conn, name="res", role="researcher", jwt_secret=jwt_secret, display_name="Rui"
            ),
            "user": create_user(
                conn, name="usr", role="user", jwt_secret=jwt_secret, display_name="Uma"
            ),
        }


def _connect(dsn: str) -> Any:
    @asynccontextmanager
    async def connect() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            yield conn

    return connect


async def test_a_version_declares_a_default_for_each_variable(
    app_db: str, people: dict[str, Persona]
) -> None:
    async with session_as(app_db, people["admin"]) as conn:
        prompt = await PromptsRepo(conn).create(slug="tutor-vars", title="Tutor")
    async with session_as(app_db, people["admin"]) as conn:
        with pytest.raises(InvalidInput, match="variables without a default value: tone, topic"):
            await PromptsRepo(conn).add_version(prompt.id, BODY)
    async with session_as(app_db, people["admin"]) as conn:
        with pytest.raises(InvalidInput, match="name mood, which is not a variable of the version"):
            await PromptsRepo(conn).add_version(
                prompt.id, BODY, defaults={"tone": "warm", "topic": "maths", "mood": "x"}
            )
    async with session_as(app_db, people["admin"]) as conn:
        with pytest.raises(InvalidInput, match="at most 500 characters"):
            await PromptsRepo(conn).add_version(
                prompt.id, BODY, defaults={"tone": "w" * 501, "topic": "maths"}
            )
    async with session_as(app_db, people["admin"]) as conn:
        version = await PromptsRepo(conn).add_version(
            prompt.id, BODY, defaults={"tone": "warm", "topic": "maths"}
        )
    assert version.variable_defaults == {"tone": "warm", "topic": "maths"}


async def test_the_agent_fills_each_variable_from_the_most_specific_source(
    app_db: str, people: dict[str, Persona]
) -> None:
    admin = people["admin"]
    async with session_as(app_db, admin) as conn:
        repo = PromptsRepo(conn)
        prompt = await repo.create(slug="tutor-arms", title="Tutor")
        plain = await repo.add_version(prompt.id, BODY, defaults={"tone": "warm", "topic": "maths"})
        await repo.activate(prompt.id, plain.id)
    connect = _connect(app_db)
    # The active version, its defaults; user_name is the participant's display name.
    setup = await session_prompt(connect, people["user"].id, "tutor-arms")
    assert setup.instructions == "You are a warm assistant for Uma, speaking about maths."
    assert setup.variables == {"tone": "warm", "user_name": "Uma", "topic": "maths"}
    # A plain user's room cannot set values; a researcher's can.
    asked = {"topic": "history", "user_name": "Dr R"}
    setup = await session_prompt(connect, people["user"].id, "tutor-arms", None, asked)
    assert setup.instructions == "You are a warm assistant for Uma, speaking about maths."
    setup = await session_prompt(connect, people["researcher"].id, "tutor-arms", None, asked)
    assert setup.instructions == "You are a warm assistant for Dr R, speaking about history."
    # An experiment arm's values come over the defaults, under a room's.
    async with session_as(app_db, admin) as conn:
        experiment = await PromptsRepo(conn).create_experiment(prompt.id, name="tones")
    async with session_as(app_db, admin) as conn:
        with pytest.raises(InvalidInput, match="not a variable of the version"):
            await PromptsRepo(conn).add_variant(
                experiment.id, plain.id, label="bad", weight=1, values={"x": "1"}
            )
    async with session_as(app_db, admin) as conn:
        repo = PromptsRepo(conn)
        # Two arms of one version, told apart by their values; the weights send all but
        # about one unit in a million to "formal".
        await repo.add_variant(
            experiment.id, plain.id, label="formal", weight=1000, values={"tone": "formal"}
        )
        await repo.add_variant(
            experiment.id, plain.id, label="zz-casual", weight=0.001, values={"tone": "casual"}
        )
        await repo.start_experiment(experiment.id)
    setup = await session_prompt(connect, people["user"].id, "tutor-arms")
    assert setup.prompt is not None
    assert setup.prompt.variant_id is not None
    assert setup.instructions == "You are a formal assistant for Uma, speaking about maths."
    setup = await session_prompt(
        connect, people["researcher"].id, "tutor-arms", None, {"tone": "curt"}
    )
    assert setup.variables["tone"] in {"curt"}  # the room over the arm (staff only)
