"""Schema migrations (Alembic), configured in code so an installed package can upgrade itself."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str = "") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(rev)s_%%(slug)s")
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


UNMODELLED = ("contract_search", "ix_contract_search_")
"""Search structures made by hand in migration 0010 (SQLite: ``contract_search_docs`` and two FTS5
tables with their shadow tables; PostgreSQL: ``contract_search`` and its GIN indexes):
autogenerate must neither drop nor report them."""


def include_name(name: str | None, _type: str, _parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: skip the ``UNMODELLED`` search structures."""
    return not (name and name.startswith(UNMODELLED))


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on ``engine``'s database."""
    with engine.begin() as connection:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
