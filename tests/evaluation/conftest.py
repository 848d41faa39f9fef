"""Fixtures for the evaluation tests: MNIST's test digits once per session."""

from __future__ import annotations

import pytest

from evaluation.dataset import MnistTestDigits, load_test_digits


@pytest.fixture(scope="session")
def digits() -> MnistTestDigits:
    """The 10,000 MNIST test digits (the verified cache makes this fast after the first load)."""
    return load_test_digits()
