"""Admin and account page logic: experiment arms, version diffs, settings validation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from dashboards.components.experiment_controls import parse_arms
from dashboards.pages.account import NOT_SET, AccountPage
from dashboards.pages.admin import side_by_side_diff
from workbench.db.models import PromptVersion

pytestmark = pytest.mark.unit


def test_arms_parse_and_bad_arms_are_explained() -> None:
    assert parse_arms("1:3, 2:1") == {1: 3.0, 2: 1.0}
    assert parse_arms("1, 2") == {1: 1.0, 2: 1.0}
    with pytest.raises(ValueError, match="write version:weight"):
        parse_arms("one:3")
    with pytest.raises(ValueError, match="weights are positive"):
        parse_arms("1:0")


def _version(number: int, body: str) -> PromptVersion:
    return PromptVersion(
        id=uuid.uuid4(),
        prompt_id=uuid.uuid4(),
        version=number,
        body=body,
        variables=[],
        notes="",
        author_id=None,
        created_at=datetime.now(UTC),
    )


def test_diff_shows_both_versions_side_by_side() -> None:
    table = side_by_side_diff(
        _version(1, "Be brief.\nBe kind."), _version(2, "Be brief.\nBe very kind.")
    )
    assert "version 1" in table
    assert "version 2" in table
    assert 'class="diff_add"' in table  # the changed words are marked


def test_settings_form_validates_before_anything_is_saved() -> None:
    store = AccountPage(session=None, language="en-GB", theme="dark", stack=NOT_SET)
    settings = store.settings()
    assert settings.language == "en-GB"
    assert settings.ui is not None
    assert settings.ui.theme == "dark"
    assert settings.stack is None
    store.language = "English please"
    with pytest.raises(ValueError, match="language: String should match pattern"):
        store.settings()


def test_roles_rank_as_sql_ranks_them_and_languages_reduce_to_their_primary_tag() -> None:
    from workbench.db.models import APP_ROLES, primary_language, ranks_at_least

    assert APP_ROLES == ("user", "researcher", "admin")
    assert ranks_at_least("admin", "researcher")
    assert ranks_at_least("researcher", "researcher")
    assert not ranks_at_least("user", "researcher")
    assert primary_language("en-GB") == "en"
    assert primary_language("de") == "de"
    assert primary_language(None) is None
    assert primary_language("") is None
