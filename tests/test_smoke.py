from sqlalchemy import inspect

from econtract.db import make_engine


def test_migrated_schema_has_every_table(db_url: str) -> None:
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"contracts", "audit_events", "outbox", "users"} <= tables
