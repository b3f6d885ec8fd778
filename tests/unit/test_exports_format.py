"""Export files: the same turns as JSON, CSV and Parquet, with fixed columns."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime

import pandas as pd
import pytest

from dashboards.pages.history import exports_markdown
from workbench.exports import COLUMNS, serialise

pytestmark = pytest.mark.unit

ROW = {
    "conversation_id": uuid.UUID(int=1),
    "idx": 0,
    "role": "user",
    "text": 'Hello, "agent"\nsecond line',
    "reference_text": None,
    "started_at": datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
    "ended_at": datetime(2026, 11, 24, 12, 0, 2, tzinfo=UTC),
    "v2v_s": 1.25,
    "interrupted": False,
    "extra_column_is_dropped": 1,
}


def test_json_csv_and_parquet_hold_the_same_turns() -> None:
    as_json = json.loads(serialise([ROW], "json"))["turns"]
    as_csv = pd.read_csv(io.BytesIO(serialise([ROW], "csv")))
    as_parquet = pd.read_parquet(io.BytesIO(serialise([ROW], "parquet")))
    for frame in (pd.DataFrame(as_json), as_csv, as_parquet):
        assert list(frame.columns) == COLUMNS
        assert frame.loc[0, "text"] == ROW["text"]
        assert frame.loc[0, "v2v_s"] == 1.25
        assert frame.loc[0, "conversation_id"] == str(ROW["conversation_id"])
    assert as_json[0]["started_at"].startswith("2026-11-24T12:00:00")


def test_an_empty_export_is_still_a_valid_file() -> None:
    assert json.loads(serialise([], "json")) == {"turns": []}
    assert list(pd.read_csv(io.BytesIO(serialise([], "csv"))).columns) == COLUMNS
    assert pd.read_parquet(io.BytesIO(serialise([], "parquet"))).empty


def test_export_list_links_ready_files_and_explains_failures() -> None:
    when = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    text = exports_markdown(
        [
            {
                "format": "csv",
                "status": "ready",
                "path": "u/e.csv",
                "error": None,
                "created_at": when,
            },
            {
                "format": "json",
                "status": "failed",
                "path": None,
                "error": "boom",
                "created_at": when,
            },
        ]
    )
    assert "CSV: [download](/files/exports/u/e.csv)" in text
    assert "JSON: failed boom" in text
