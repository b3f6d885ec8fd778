"""What every eval task provides to the runner.

A task is versioned: change how it scores and you bump `version`, so runs
that measured different things are never compared as if they were the same.
It turns a dataset into items (each with a stable id), scores a batch of items
into `EvalSample` rows (an item that fails gets its error recorded, not a crash),
and summarises all rows of a run into corpus metrics. Summaries are computed
from the stored rows only, so a resumed run summarises exactly like an
uninterrupted one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from evals.run_folder import RunInfo
from workbench.db.models import EvalSample

Item = TypeVar("Item")


class Task(ABC, Generic[Item]):
    """One eval task bound to its models and dataset."""

    name: ClassVar[str]
    version: ClassVar[str]

    def __init__(self, *, dataset_id: str, items: Sequence[Item]) -> None:
        self.dataset_id = dataset_id
        self.items = list(items)

    @abstractmethod
    def item_id(self, item: Item) -> str:
        """A stable id for the item (the resume key)."""

    def item_of(self, sample_id: str) -> str:
        """The id of the item a stored row belongs to (the resume key); rows are items by default."""
        return sample_id

    @abstractmethod
    def spec_snapshot(self) -> dict[str, Any]:
        """Everything that decides the results (model specs, prompts, params), as JSON."""

    def begin(self, info: RunInfo) -> None:
        """Called with the run's identity (new or resumed) before anything is scored."""

    def for_worker(self, index: int, workers: int) -> Task[Item]:
        """This task as worker `index` of `workers` scoring batches at once holds it.

        An engine with several workers (Ray actors) gives each its own copy; a task
        whose items need a resource of their own per worker (a simulated call's
        account) hands each worker its share. Most tasks need nothing: themselves.
        """
        return self

    def load(self) -> None:
        """Load models (blocking); called once before the first batch."""

    @abstractmethod
    async def score(self, batch: Sequence[Item]) -> list[EvalSample]:
        """Rows for a batch of items; one or more rows per item."""

    @abstractmethod
    def summarise(self, samples: Sequence[EvalSample]) -> dict[str, Any]:
        """Corpus metrics from all rows of a run."""

    async def aclose(self) -> None:
        """Release models."""
