"""search indexes for every term length

Keyword search answers from indexes alone, for words of any length (see
``econtract.contracts.search``). SQLite: the content-holding FTS5 table ``contract_search`` makes
way for ``contract_search_docs`` (contract → integer rowid) and two contentless FTS5 tables,
``contract_search_trgm`` (trigrams of the casefolded text) and ``contract_search_grams`` (its
distinct 1- and 2-character substrings, one token each). PostgreSQL: the two pg_trgm indexes on
``contract_texts`` make way for the table ``contract_search`` (casefolded text with a pg_trgm GIN
index, grams as a ``text[]`` with a GIN index). None of them is a SQLAlchemy model:
``econtract.migrate`` tells autogenerate to leave them alone.

The upgrade indexes every existing ``contract_texts`` row with the same functions that
``search.index`` uses (about 2-3 minutes per 100,000 contracts); the downgrade restores the
revision 0009 structures and fills them again from ``contract_texts``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 04:30:00.000000
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from econtract.contracts.search import gram_tokens, grams_of, searchable_text

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BATCH = 1000


def _texts(bind: sa.Connection) -> Iterator[tuple[Any, Any, str]]:
    """Every ``contract_texts`` row as (contract id, organisation id, searchable text), oldest
    contract first, read in batches."""
    rows = bind.execute(sa.text(
        "SELECT t.contract_id, t.org_id, t.content, t.body FROM contract_texts t "
        "JOIN contracts c ON c.id = t.contract_id ORDER BY c.created_at, c.id"),
        execution_options={"stream_results": True, "yield_per": BATCH})
    for contract_id, org_id, content, body in rows:
        yield contract_id, org_id, searchable_text(content, body)


def _insert(bind: sa.Connection, statements: Sequence[str],
            rows: Iterable[dict[str, Any]]) -> None:
    """Run every statement for each batch of ``rows``."""
    remaining = iter(rows)
    while batch := list(itertools.islice(remaining, BATCH)):
        for statement in statements:
            bind.execute(sa.text(statement), batch)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE contract_search")
        op.execute("CREATE TABLE contract_search_docs ("
                   "id INTEGER PRIMARY KEY AUTOINCREMENT, "
                   "contract_id CHAR(32) NOT NULL UNIQUE "
                   "REFERENCES contracts (id) ON DELETE CASCADE, "
                   "org_id CHAR(32) NOT NULL REFERENCES organisations (id))")
        op.execute("CREATE VIRTUAL TABLE contract_search_trgm USING fts5(text, "
                   "tokenize = 'trigram case_sensitive 1', content = '', columnsize = 0)")
        op.execute("CREATE VIRTUAL TABLE contract_search_grams USING fts5(grams, "
                   "tokenize = 'ascii', content = '', columnsize = 0, detail = none)")
        _insert(bind, [
            "INSERT INTO contract_search_docs (id, contract_id, org_id) "
            "VALUES (:id, :contract_id, :org_id)",
            "INSERT INTO contract_search_trgm (rowid, text) VALUES (:id, :text)",
            "INSERT INTO contract_search_grams (rowid, grams) VALUES (:id, :grams)",
        ], ({"id": rowid, "contract_id": contract_id, "org_id": org_id, "text": text,
              "grams": gram_tokens(text)}
             for rowid, (contract_id, org_id, text) in enumerate(_texts(bind), start=1)))
        for fts in ("contract_search_trgm", "contract_search_grams"):
            op.execute(f"INSERT INTO {fts} ({fts}) VALUES ('optimize')")  # one b-tree each
        return
    op.execute("DROP INDEX ix_contract_texts_content_trgm")
    op.execute("DROP INDEX ix_contract_texts_body_trgm")
    op.execute("CREATE TABLE contract_search (contract_id uuid NOT NULL, "
               "text text NOT NULL, grams text[] NOT NULL, "
               "CONSTRAINT pk_contract_search PRIMARY KEY (contract_id), "
               "CONSTRAINT fk_contract_search_contract_id_contracts FOREIGN KEY (contract_id) "
               "REFERENCES contracts (id) ON DELETE CASCADE)")
    # Statistics on 10,000 grams rather than 1,000: with the default, every rare gram is
    # estimated at 0.5 % of the rows and the list walks all contracts for it.
    op.execute("ALTER TABLE contract_search ALTER COLUMN grams SET STATISTICS 1000")
    _insert(bind, ["INSERT INTO contract_search (contract_id, text, grams) "
                   "VALUES (:contract_id, :text, :grams)"],
            ({"contract_id": contract_id, "text": text, "grams": grams_of(text)}
             for contract_id, _, text in _texts(bind)))
    op.execute("CREATE INDEX ix_contract_search_text_trgm ON contract_search "
               "USING gin (text gin_trgm_ops)")
    op.execute("CREATE INDEX ix_contract_search_grams ON contract_search USING gin (grams)")
    op.execute("ANALYZE contract_search")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE contract_search_grams")
        op.execute("DROP TABLE contract_search_trgm")
        op.execute("DROP TABLE contract_search_docs")
        op.execute("CREATE VIRTUAL TABLE contract_search USING fts5("
                   "contract_id UNINDEXED, org_id UNINDEXED, text, tokenize = 'trigram')")
        op.execute("INSERT INTO contract_search (contract_id, org_id, text) "
                   "SELECT contract_id, org_id, content || char(10) || body FROM contract_texts")
        return
    op.execute("DROP TABLE contract_search")
    op.execute("CREATE INDEX ix_contract_texts_body_trgm ON contract_texts "
               "USING gin (body gin_trgm_ops)")
    op.execute("CREATE INDEX ix_contract_texts_content_trgm ON contract_texts "
               "USING gin (content gin_trgm_ops)")
