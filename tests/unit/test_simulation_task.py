"""A suite run split over workers (Ray actors): each worker calls as accounts no other worker holds."""

from __future__ import annotations

import pickle
from uuid import uuid4

import pytest

from evals.simulation.call import CallSetup
from evals.simulation.suite import load_suite
from evals.simulation.task import SimulationTask
from workbench.config import REPO_ROOT, Settings

pytestmark = pytest.mark.unit


def _task(accounts: int) -> SimulationTask:
    return SimulationTask(
        suite=load_suite(REPO_ROOT / "suites" / "quick.yaml"),
        setup=CallSetup(Settings(_env_file=None)),  # type: ignore[call-arg]
        accounts=[uuid4() for _ in range(accounts)],
        runs=3,
    )


def test_each_worker_gets_accounts_no_other_worker_holds() -> None:
    task = _task(4)
    shares = [task.for_worker(index, 2).accounts for index in range(2)]
    assert [len(share) for share in shares] == [2, 2]
    assert set(shares[0]).isdisjoint(shares[1])
    assert set(shares[0]) | set(shares[1]) == set(task.accounts)
    assert task.for_worker(0, 2).items == task.items  # the work is shared, not split
    assert len(task.accounts) == 4  # the driver's task keeps them all


def test_more_workers_than_accounts_is_refused() -> None:
    with pytest.raises(ValueError, match="3 workers need at least as many simulation accounts"):
        _task(2).for_worker(2, 3)


def test_a_worker_survives_the_trip_to_its_actor() -> None:
    """Ray pickles the task into each actor; the copy calls as its own account."""
    worker = _task(2).for_worker(1, 2)
    copy = pickle.loads(pickle.dumps(worker))  # noqa: S301 (bytes made just above)
    assert copy.accounts == worker.accounts
    assert copy.suite == worker.suite
    assert copy.item_id(copy.items[-1]) == "follow-up#2"
