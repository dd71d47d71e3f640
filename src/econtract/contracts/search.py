"""Keyword search (关键字检索) over titles, parties, tags, categories and the documents' text.

Every word of the query must occur somewhere (AND), as a substring, in any script: Chinese has
no spaces between words, so substring search is the right model, not word tokens. Matching is
case-insensitive by Unicode case folding: a contract matches a term when ``term.casefold()`` is
a substring of ``searchable_text`` (its metadata and document text, casefolded), on both
databases alike.

Two indexes per database, both written by ``index`` in the same transaction as the change:

* **trigrams** for terms of 3 or more characters. SQLite: the contentless FTS5 table
  ``contract_search_trgm`` (trigram tokenizer; a quoted phrase is a substring match, exact, no
  re-check). PostgreSQL: ``contract_search.text`` with a pg_trgm GIN index and ``LIKE``.
* **grams** for terms of 1 or 2 characters, which a trigram index cannot serve (most Chinese
  words have two characters): the distinct 1- and 2-character substrings of the text. A short
  term is present exactly when it is one of them. SQLite: the contentless FTS5 table
  ``contract_search_grams``, one token per gram (``gram_token``); PostgreSQL:
  ``contract_search.grams``, a ``text[]`` with a GIN index.

On SQLite, ``contract_search_docs`` maps each contract to the integer rowid of its FTS rows. A
re-indexed contract gets a new rowid (ids are never reused: ``AUTOINCREMENT``), because
contentless FTS5 rows cannot be deleted without their old text; the old rows stay behind
unreachable. ``matching`` picks the statement shape from the exact number of FTS matches, which
costs a few milliseconds: rare terms list their contracts, common terms are checked per contract
while the list walks its sort order (see ``docs/benchmarks.md``).

``highlight`` gives a short excerpt around the first match with every match marked, as safe HTML.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from markupsafe import Markup, escape
from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    Uuid,
    and_,
    column,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from econtract.contracts.models import Contract, ContractText
from econtract.db import is_postgres

MAX_TERMS = 8
SNIPPET_CHARS = 160
SHORT_TERM = 2
"""Terms of at most this many characters are looked up in the gram index."""
DENSE_SHARE = 0.05
"""SQLite: when at least this share of all indexed contracts match, a list walks its contracts in
order and checks each (it stops after a page); below it, the matches are listed first."""

DOCS = table("contract_search_docs", column("id"), column("contract_id"), column("org_id"))
"""SQLite: contract → FTS rowid (ids as SQLite's Uuid columns store them, 32 hex digits)."""
TRIGRAMS = table("contract_search_trgm", column("rowid"), column("text"))
GRAMS = table("contract_search_grams", column("rowid"), column("grams"))
SEARCH = table("contract_search", column("contract_id", Uuid()), column("text", Text()),
               column("grams", ARRAY(Text())))
"""PostgreSQL: one row per contract."""


def terms_of(query: str) -> list[str]:
    """The distinct words of a query (whitespace-separated, casefolded), at most
    ``MAX_TERMS``."""
    seen: dict[str, None] = {}
    for word in query.split():
        seen.setdefault(word.casefold(), None)
    return list(seen)[:MAX_TERMS]


def searchable_text(content: str, body: str) -> str:
    """What the terms are looked for in: metadata and document text, casefolded. A term holds
    no whitespace, so it cannot match across the line break between the two."""
    return f"{content}\n{body}".casefold()


def grams_of(text: str) -> list[str]:
    """The distinct 1- and 2-character substrings of ``text`` without whitespace, sorted."""
    found: set[str] = set()
    for word in text.split():
        found.update(word)
        found.update(map(str.__add__, word, word[1:]))
    return sorted(found)


def gram_token(gram: str) -> str:
    """A gram as one token of FTS5's ``ascii`` tokenizer: its code points in hex, joined by
    ``g`` (``押金`` → ``62bcg91d1``), so punctuation and any script survive tokenizing."""
    return "g".join(format(ord(char), "x") for char in gram)


def gram_tokens(text: str) -> str:
    """The ``contract_search_grams`` document of ``text`` (SQLite)."""
    return " ".join(map(gram_token, grams_of(text)))


def metadata_text(contract: Contract) -> str:
    """The searchable description of a contract besides its document: title, parties,
    category, tags."""
    parts = [contract.title, contract.category or ""]
    parts += [f"{s.name} {s.email}" for s in contract.signers]
    parts += [t.tag for t in contract.tags]
    return "\n".join(p for p in parts if p)


def index(session: Session, contract: Contract, *, body: str | None = None) -> None:
    """(Re)index ``contract``; ``body`` is new document text, ``None`` keeps the stored one."""
    row = session.get(ContractText, contract.id)
    before = None if row is None else (row.content, row.body)
    if row is None:
        row = ContractText(contract_id=contract.id, org_id=contract.org_id, body="", content="",
                           updated_at=contract.updated_at)
        session.add(row)
    if body is not None:
        row.body = body
    row.content, row.updated_at = metadata_text(contract), contract.updated_at
    session.flush()
    if before == (row.content, row.body):
        return  # the search rows were written with this text
    _write(session, contract.id, contract.org_id, searchable_text(row.content, row.body))


def _write(session: Session, contract_id: uuid.UUID, org_id: uuid.UUID, searchable: str) -> None:
    """The search rows of one contract for its ``searchable_text``, replacing any earlier ones
    (on SQLite they stay behind, unreachable: see the module docstring)."""
    if is_postgres(session):
        values = {"contract_id": contract_id, "text": searchable, "grams": grams_of(searchable)}
        session.execute(pg_insert(SEARCH).values(values).on_conflict_do_update(
            index_elements=[SEARCH.c.contract_id], set_=values))
        return
    session.execute(delete(DOCS).where(DOCS.c.contract_id == contract_id.hex))
    rowid = session.scalar(insert(DOCS).values(contract_id=contract_id.hex,
                                               org_id=org_id.hex).returning(DOCS.c.id))
    session.execute(insert(TRIGRAMS).values(rowid=rowid, text=searchable))
    session.execute(insert(GRAMS).values(rowid=rowid, grams=gram_tokens(searchable)))


REBUILD_BATCH = 500


def indexed_contracts(session: Session) -> int:
    """How many contracts have searchable text (what ``rebuild`` goes through)."""
    return int(session.scalar(select(func.count()).select_from(ContractText)) or 0)


def rebuild(session: Session, *, progress: Callable[[int], object] = lambda _: None) -> int:
    """Write every contract's search rows afresh from ``contract_texts``, oldest contract first,
    in the caller's transaction: readers keep the old index until it commits. On SQLite this
    also drops the unreachable rows that re-indexing leaves behind (``delete-all`` of both FTS
    tables). ``progress`` is called with the number of contracts done since its last call.

    :return: the number of contracts indexed.
    """
    if not is_postgres(session):
        session.execute(delete(DOCS))
        for fts in (TRIGRAMS.name, GRAMS.name):
            session.execute(text(f"INSERT INTO {fts} ({fts}) VALUES ('delete-all')"))
    ids = list(session.scalars(select(ContractText.contract_id).join(
        Contract, Contract.id == ContractText.contract_id).order_by(Contract.created_at,
                                                                    Contract.id)))
    for start in range(0, len(ids), REBUILD_BATCH):
        batch = ids[start:start + REBUILD_BATCH]
        rows = {row.contract_id: row for row in session.execute(select(
            ContractText.contract_id, ContractText.org_id, ContractText.content,
            ContractText.body).where(ContractText.contract_id.in_(batch)))}
        for contract_id in batch:
            row = rows[contract_id]
            _write(session, contract_id, row.org_id, searchable_text(row.content, row.body))
        progress(len(batch))
    return len(ids)


def _phrases(words: Iterable[str]) -> str:
    """An FTS5 query: every word as a quoted phrase (``"`` doubled), all required."""
    return " AND ".join('"' + word.replace('"', '""') + '"' for word in words)


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def matching(session: Session, terms: Sequence[str]) -> ColumnElement[bool]:
    """A condition on ``Contract.id``: the contracts whose text contains every term. On SQLite
    it first counts the FTS matches, to pick the shape of the condition (module docstring)."""
    long_terms = [t for t in terms if len(t) > SHORT_TERM]
    short_terms = [t for t in terms if len(t) <= SHORT_TERM]
    if is_postgres(session):
        conditions: list[ColumnElement[bool]] = [
            SEARCH.c.text.like(_like(t), escape="\\") for t in long_terms]
        if short_terms:
            conditions.append(SEARCH.c.grams.contains(short_terms))
        return Contract.id.in_(select(SEARCH.c.contract_id).where(and_(*conditions)))
    rowids = _fts_rowids(long_terms, short_terms)
    matches, indexed = session.execute(select(
        select(func.count()).select_from(rowids.subquery()).scalar_subquery(),
        select(func.max(DOCS.c.id)).scalar_subquery())).one()
    current = DOCS.c.id.in_(rowids)
    if matches >= DENSE_SHARE * (indexed or 0):
        # Common: a contract is checked where it stands in the list's order (the rowids are
        # listed once per statement), so the page stops early and so does the capped count.
        return exists().where(DOCS.c.contract_id == Contract.id, current)
    return Contract.id.in_(select(DOCS.c.contract_id).where(current))


def _fts_rowids(long_terms: Sequence[str], short_terms: Sequence[str]) -> Select[tuple[int]]:
    """SQLite: the FTS rowids whose text holds every term (stale rowids of re-indexed contracts
    included; ``contract_search_docs`` leaves them out)."""
    by_grams = select(GRAMS.c.rowid).where(literal_column(GRAMS.name).op("MATCH")(
        _phrases(map(gram_token, short_terms))))
    if not long_terms:
        return by_grams
    rowids = select(TRIGRAMS.c.rowid).where(
        literal_column(TRIGRAMS.name).op("MATCH")(_phrases(long_terms)))
    if short_terms:
        # ``+ 0``: a plain ``rowid IN`` would become one FTS look-up per gram match.
        rowids = rowids.where((TRIGRAMS.c.rowid + 0).in_(by_grams))
    return rowids


PLANNER_OFF = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")
"""PostgreSQL planner methods a keyword list turns off (``planned``)."""


@contextmanager
def planned(session: Session, terms: Sequence[str]) -> Iterator[None]:
    """Around the statements of a keyword list on PostgreSQL: nested loops over indexes only, which
    stop as soon as the page or the capped count is complete. The planner does not count what
    a re-check costs (de-TOASTing ``contract_search``'s text or grams) and has no statistics on
    long texts for ``LIKE``, so by cost alone it can pick a sequential scan, or a hash join that
    re-checks every match of a common word (30 ms or 200 ms instead of 10-30 ms at 100,000
    contracts; ``docs/benchmarks.md``). The settings are local to the transaction and restored
    afterwards."""
    if not terms or not is_postgres(session):
        yield
        return
    before = session.execute(select(*(func.current_setting(name) for name in PLANNER_OFF))).one()
    session.execute(select(*(func.set_config(name, "off", True) for name in PLANNER_OFF)))
    yield  # on an error, no restore: the transaction is aborted, and its rollback restores them
    session.execute(select(*(func.set_config(name, value, True)
                             for name, value in zip(PLANNER_OFF, before, strict=True))))


def highlight(session: Session, contract_ids: Iterable[uuid.UUID],
              terms: Sequence[str]) -> dict[uuid.UUID, Markup]:
    """An excerpt with the matches marked (``<mark>``) for each contract that has one."""
    ids = list(contract_ids)
    if not ids or not terms:
        return {}
    rows = session.execute(select(ContractText.contract_id, ContractText.content,
                                  ContractText.body).where(ContractText.contract_id.in_(ids)))
    result = {}
    for contract_id, content, body in rows:
        snippet = excerpt(f"{content}\n{body}", terms)
        if snippet is not None:
            result[contract_id] = snippet
    return result
def excerpt(text: str, terms: Sequence[str], width: int = SNIPPET_CHARS) -> Markup | None:
    """``width`` characters of ``text`` around the first match, every match wrapped in
    ``<mark>``, everything else escaped; ``None`` when nothing matches."""
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)),
                         re.IGNORECASE)
    flat = " ".join(text.split())
    first = pattern.search(flat)
    if first is None:
        return None
    start = max(0, first.start() - width // 3)
    end = min(len(flat), start + width)
    window = flat[start:end]
    out = Markup("…") if start else Markup("")
    position = 0
    for match in pattern.finditer(window):
        out += escape(window[position:match.start()])
        out += Markup("<mark>") + escape(match.group()) + Markup("</mark>")
        position = match.end()
    out += escape(window[position:])
    return out + (Markup("…") if end < len(flat) else Markup(""))
