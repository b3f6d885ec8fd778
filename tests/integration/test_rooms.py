"""Rooms for browser conversations on the stack's LiveKit: metadata for the agent, a token for one room."""

from __future__ import annotations

import json
import uuid

import jwt
import pytest
from livekit import api

from dashboards.rooms import open_room
from workbench.config import Settings

pytestmark = pytest.mark.integration


async def test_a_room_carries_the_prompt_and_its_token_joins_only_it(settings: Settings) -> None:
    user = uuid.uuid4()
    ticket = await open_room(
        settings, user_id=user, display_name="Ada", prompt_slug="voice-assistant"
    )
    assert ticket.url == settings.livekit_url
    assert settings.livekit_api_key is not None
    assert settings.livekit_api_secret is not None
    secret = settings.livekit_api_secret.get_secret_value()
    async with api.LiveKitAPI(settings.livekit_http_url, settings.livekit_api_key, secret) as lk:
        rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[ticket.room]))
        assert json.loads(rooms.rooms[0].metadata) == {"prompt": "voice-assistant"}
        await lk.room.delete_room(api.DeleteRoomRequest(room=ticket.room))
    claims = jwt.decode(ticket.token, secret, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["sub"] == str(user)
    assert claims["video"]["room"] == ticket.room
    assert claims["video"]["roomJoin"] is True
    assert not claims["video"].get("roomAdmin")
    assert claims["exp"] - claims["nbf"] <= 3600


async def test_a_bad_prompt_slug_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="not a prompt slug"):
        await open_room(settings, user_id=uuid.uuid4(), display_name="x", prompt_slug="../etc")
