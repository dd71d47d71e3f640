"""Fixtures for the outbox tests: an engine on each database, a clock we control, a record table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from econtract.db import make_engine, make_session_factory

from .support import FakeClock, scratch


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    scratch.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def clock() -> FakeClock:
    # Same interface as the suite-wide ``clock``, started at this package's T0.
    return FakeClock()
