"""Keyword search (关键字检索) over titles, parties, tags, categories and the documents' text.

Every word of the query must occur somewhere (AND), as a substring, case-insensitively, in any
script: Chinese has no spaces between words, so substring search is the right model, not word
tokens. SQLite answers from the FTS5 table ``contract_search`` (trigram tokenizer: patterns of 3
or more characters use the index; shorter ones scan it); PostgreSQL from ``contract_texts`` with
pg_trgm GIN indexes. Both are kept current by ``index`` in the same transaction as the change.

``highlight`` gives a short excerpt around the first match with every match marked, as safe HTML.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence

from markupsafe import Markup, escape
from sqlalchemy import (
    ColumnElement,
    and_,
    column,
    delete,
    insert,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.orm import Session

from econtract.contracts.models import Contract, ContractText
from econtract.db import is_postgres

MAX_TERMS = 8
SNIPPET_CHARS = 160

_fts = table("contract_search", column("contract_id"), column("org_id"), column("text"))


def terms_of(query: str) -> list[str]:
    """The distinct words of a query (whitespace-separated), at most ``MAX_TERMS``."""
    seen: dict[str, None] = {}
    for word in query.split():
        seen.setdefault(word.casefold(), None)
    return list(seen)[:MAX_TERMS]


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


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
    if row is None:
        row = ContractText(contract_id=contract.id, org_id=contract.org_id, body="", content="",
                           updated_at=contract.updated_at)
        session.add(row)
    if body is not None:
        row.body = body
    row.content, row.updated_at = metadata_text(contract), contract.updated_at
    session.flush()
    if not is_postgres(session):
        # Ids as SQLite's Uuid columns store them (32 hex digits), so the FTS ids compare equal
        # to ``contracts.id`` in plain SQL.
        session.execute(delete(_fts).where(_fts.c.contract_id == contract.id.hex))
        session.execute(insert(_fts).values(contract_id=contract.id.hex,
                                            org_id=contract.org_id.hex,
                                            text=f"{row.content}\n{row.body}"))


def matching(session: Session, terms: Sequence[str]) -> ColumnElement[bool]:
    """A condition on ``Contract.id``: the contracts whose text contains every term."""
    if is_postgres(session):
        found = select(ContractText.contract_id).where(and_(*(
            or_(ContractText.content.ilike(_like(t), escape="\\"),
                ContractText.body.ilike(_like(t), escape="\\")) for t in terms)))
        return Contract.id.in_(found)
    # Words of three or more characters go to the trigram index through one MATCH of quoted
    # phrases; SQLite hands FTS5 no LIKE with ESCAPE, so those would scan the whole table.
    # Shorter words (most Chinese words are two characters) are below trigram length: they
    # keep LIKE … ESCAPE, which scans but stays correct (a plain trigram LIKE of fewer than
    # three non-ASCII characters finds nothing).
    long_terms = [t for t in terms if len(t) >= 3]
    conditions: list[ColumnElement[bool]] = [
        _fts.c.text.like(_like(t), escape="\\") for t in terms if len(t) < 3]
    if long_terms:
        phrase = " AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms)
        conditions.insert(0, literal_column("contract_search").op("MATCH")(phrase))
    return Contract.id.in_(select(_fts.c.contract_id).where(and_(*conditions)))


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
