from sqlalchemy import inspect

from econtract import migrate
from econtract.db import make_engine


def test_migrated_schema_has_every_table(db_url: str) -> None:
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"contracts", "audit_events", "outbox", "users"} <= tables


def test_migrations_go_down_and_up_again(db_url: str) -> None:
    from econtract import migrate

    engine = make_engine(db_url)
    try:
        migrate.downgrade(engine, "base")
        assert "contracts" not in set(inspect(engine).get_table_names())
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) is not None
        assert {"signer_credentials", "issued_certificates"} <= set(
            inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_models_and_migrations_agree(db_url: str) -> None:
    """Every model change comes with its migration (autogenerate finds nothing to do)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from econtract.models import Base

    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_name": migrate.include_name})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
