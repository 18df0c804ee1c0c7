"""Shared small data for the learning tests (session-scoped: built once)."""

from __future__ import annotations

import pytest

from tclearn.data import CoalitionData, Dataset, phantom_dataset
from tclearn.learning import Task, get_task

KEY = b"coalition-key-0123456789abcdef!!"


@pytest.fixture(scope="session")
def id_key() -> bytes:
    return KEY


@pytest.fixture(scope="session")
def digits_task() -> Task:
    return get_task("digits")


@pytest.fixture(scope="session")
def digits_data(digits_task: Task) -> CoalitionData:
    return digits_task.coalition_data(3, seed=0, test_size=200)


@pytest.fixture(scope="session")
def bladder_task() -> Task:
    return get_task("bladder")


@pytest.fixture(scope="session")
def phantoms() -> Dataset:
    """Four phantoms of the default size."""
    return phantom_dataset(4, seed=0)
