"""Simulated callers through the real stack: LiveKit, the agent worker, Supabase Auth and Postgres.

`python -m evals simulate` runs a two-scenario suite at once: one scenario any
working stack passes, one built to fail (a phrase no reply says). The run exits
1 and names the failed scenario; both calls are stored as conversations marked
simulated with their run; the simulation account cannot sign in; a stack no
worker serves gives errored calls, not a crash; and `--engine ray` places the
calls from Ray actors on two nodes, each actor with an account of its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
import soundfile

from evals.__main__ import main
from evals.ray_engine import keep_ray_on_loopback, loopback_cluster
from evals.simulation.accounts import account_email
from tests.support.live_stacks import wait_for_stack
from workbench.config import Settings

if "ray" not in sys.modules:
    keep_ray_on_loopback()
ray = pytest.importorskip("ray", reason="ray is in the `scale` extra (./dev installs it)")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.integration

SUITE = """\
name: ci-two
scenarios:
  - id: hello
    turns:
      - say: Please tell me a fun fact about the ocean.
    expect: {answers_within_s: 20, no_echo: false}
  - id: impossible
    required: true
    description: Built to fail, so the exit status can be checked.
    caller: {noise: {kind: pink, snr_db: 20}}
    turns:
      - say: What is the capital of France?
        expect: {mentions: [xylophone quartet]}
"""


def test_a_suite_runs_through_the_stack_and_its_exit_status_says_what_failed(
    tmp_path: Path, settings: Settings, admin_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wait_for_stack(admin_dsn, settings.default_stack, idle=True, timeout_s=90)
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "run"
    status = main(
        [
            *("simulate", "--suite", str(suite), "--out", str(out), "--concurrency", "2"),
            *("--as", "researcher@workbench.local"),  # the run's rows in Supabase too
            *("--prompt", "voice-assistant@1"),  # a version that is not the active one
        ]
    )
    printed = capsys.readouterr()
    assert status == 1, printed.out + printed.err
    assert "PASS  hello#0" in printed.out
    assert "FAIL  impossible#0: turn 1 mentions" in printed.out
    assert "required scenario impossible#0 did not pass" in printed.err

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["failed"] == ["impossible#0"]
    assert metrics["errored"] == []
    rows = {
        json.loads(line)["sample_id"]: json.loads(line) for line in (out / "samples.jsonl").open()
    }
    hello = rows["hello#0"]["metrics"]
    assert 0 < hello["heard_v2v_s"][0] < 20
    assert hello["dialogue"][0]["agent"], "the reply was heard and transcribed"
    # The agent's STT heard the caller's words (pink noise at 20 dB on the other call).
    assert rows["impossible#0"]["metrics"]["live_wer"] < 0.5
    assert rows["impossible#0"]["metrics"]["line"][0]["snr_db"] == pytest.approx(20, abs=1)

    run_id = json.loads((out / "run.json").read_text())["run_id"]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        marked = conn.execute(
            """select s.scenario, s.passed, c.owner_id, (select count(*) from public.turns t
                      where t.conversation_id = c.id and t.role = 'user'), v.version
               from public.simulated_calls s join public.conversations c on c.id = s.conversation_id
               left join public.prompt_versions v on v.id = c.prompt_version_id
               where s.run_id = %s order by s.scenario""",
            [run_id],
        ).fetchall()
    assert [(row[0], row[1]) for row in marked] == [("hello", True), ("impossible", False)]
    assert all(row[3] >= 1 for row in marked)  # the caller's words were stored
    assert len({row[2] for row in marked}) == 2  # one account per call held at once
    assert [row[4] for row in marked] == [1, 1]  # the pinned version, not the active one
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        stored = conn.execute(
            """select r.task, r.status, (r.metrics ->> 'calls')::int,
                      (select count(*) from public.eval_samples s where s.run_id = r.id)
               from public.eval_runs r where r.id = %s""",
            [run_id],
        ).fetchone()
    assert stored == ("simulation", "completed", 2, 2)
    # The failed call's audio is kept beside the run: both sides, as the caller heard them.
    audio, rate = soundfile.read(out / "calls" / "impossible-0.wav")
    assert rate == 16_000
    assert audio.shape[1] == 2
    assert np.abs(audio[:, 0]).max() > 0.01  # the caller spoke
    assert np.abs(audio[:, 1]).max() > 0.01  # and heard the agent


def test_a_simulation_account_cannot_sign_in(settings: Settings, admin_dsn: str) -> None:
    """Even given a password, Supabase Auth refuses it: the account is banned."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        row = conn.execute(
            "select id, banned_until > now() + interval '50 years' from auth.users where email = %s",
            [account_email(1)],
        ).fetchone()
    assert row is not None, "the run above made the account"
    user_id, banned = row
    assert banned
    assert settings.supabase_service_role_key is not None
    key = settings.supabase_service_role_key.get_secret_value()
    admin = {"Authorization": f"Bearer {key}", "apikey": key}
    with httpx.Client(base_url=settings.auth_url, timeout=30) as http:
        http.put(f"/admin/users/{user_id}", headers=admin, json={"password": "a-Long-passw0rd!"})
        anon = settings.supabase_anon_key
        assert anon is not None
        answer = http.post(
            "/token",
            params={"grant_type": "password"},
            headers={"apikey": anon.get_secret_value()},
            json={"email": account_email(1), "password": "a-Long-passw0rd!"},
        )
    assert answer.status_code == 400
    assert "banned" in answer.text


def test_a_stack_no_worker_serves_gives_errored_calls_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "run"
    status = main(
        ["simulate", "--suite", str(suite), "--out", str(out), "--stack", "no-such-stack"]
    )
    printed = capsys.readouterr().out
    assert status == 1
    assert (
        "ERROR hello#0: StackUnavailable: No worker runs the no-such-stack model stack" in printed
    )
    assert json.loads((out / "metrics.json").read_text())["errored"] == ["hello#0", "impossible#0"]


@pytest.fixture
def two_node_cluster() -> Iterator[Cluster]:
    """Ray's multi-node harness: a head without CPUs and two worker nodes, on loopback."""
    cluster = loopback_cluster(2)
    try:
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def test_ray_actors_place_the_calls_each_with_an_account_of_its_own(
    tmp_path: Path,
    settings: Settings,
    admin_dsn: str,
    two_node_cluster: Cluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wait_for_stack(admin_dsn, settings.default_stack, idle=True, timeout_s=90)
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.split("  - id: impossible")[0])  # the scenario that passes
    out = tmp_path / "run"
    status = main(
        [
            *("simulate", "--suite", str(suite), "--out", str(out), "--runs", "2"),
            *("--concurrency", "2", "--engine", "ray", "--address", two_node_cluster.address),
        ]
    )
    printed = capsys.readouterr()
    assert status == 0, printed.out + printed.err
    assert "PASS  hello#0" in printed.out
    assert "PASS  hello#1" in printed.out
    assert (out / "calls" / "hello-1.wav").exists()  # the actors wrote where the run keeps audio
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        owners = conn.execute(
            """select c.owner_id from public.simulated_calls s
               join public.conversations c on c.id = s.conversation_id where s.run_id = %s""",
            [run_id],
        ).fetchall()
    assert len(owners) == 2
    assert len(set(owners)) == 2  # two actors, two accounts: no account held two calls
