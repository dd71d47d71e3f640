"""The zh_CN catalog covers every string of the UI, and language negotiation picks the right one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

import econtract
from econtract import errors
from econtract.audit.events import EventKind
from econtract.contracts.states import Status
from econtract.web import LocaleMiddleware, i18n
from econtract.web.render import TEMPLATES_DIR, environment

PACKAGE = Path(econtract.__file__).parent
PO_FILE = i18n.LOCALES_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def used_msgids() -> set[str]:
    """Every msgid the extractor finds with the project's babel.cfg (templates + web modules)."""
    with (PACKAGE / "web" / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]
    found: set[str] = set()
    for filename, _, message, _, _ in extract_from_dir(PACKAGE, method_map, options_map):
        assert not filename.endswith(".pyc")
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def texts(value: object) -> list[str]:
    """A message's id or string as a list (plural entries are tuples)."""
    items = value if isinstance(value, tuple | list) else (value,)
    return [str(item or "") for item in items]


def catalog() -> Catalog:
    with PO_FILE.open("rb") as po:
        return read_po(po, locale="zh_CN")


def test_every_ui_string_has_a_chinese_translation() -> None:
    used = used_msgids()
    assert len(used) > 150  # the extraction really ran over templates and modules
    assert {"Dashboard", "Draft", "Contract created", "New contract"} <= used
    translated = {texts(m.id)[0]: m for m in catalog() if m.id}
    missing = sorted(m for m in used if m not in translated)
    assert not missing, f"msgids without a zh_CN entry: {missing}"
    for msgid in used:
        entry = translated[msgid]
        assert all(s.strip() for s in texts(entry.string)), f"empty translation for {msgid!r}"
        assert not entry.fuzzy, f"fuzzy translation for {msgid!r}"


def test_translations_keep_their_placeholders() -> None:
    for message in catalog():
        if not message.id:
            continue
        source = texts(message.id)[0]
        for text in texts(message.string):
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(source)), source


def test_every_stable_code_has_a_label() -> None:
    assert set(i18n.STATUS_LABELS) == {s.value for s in Status}
    assert set(i18n.EVENT_LABELS) == {k.value for k in EventKind}
    zh = i18n.gettext_for(i18n.ZH_CN)
    for label in [*i18n.STATUS_LABELS.values(), *i18n.EVENT_LABELS.values(),
                  *i18n.SIGNER_STATUS_LABELS.values(), *i18n.SIGNER_ROLE_LABELS.values()]:
        assert zh(label) != label, label


def _error_classes(base: type[errors.EContractError]) -> list[type[errors.EContractError]]:
    found = [base]
    for sub in base.__subclasses__():
        found.extend(_error_classes(sub))
    return found


def test_every_error_title_is_translated() -> None:
    zh = i18n.gettext_for(i18n.ZH_CN)
    for cls in _error_classes(errors.EContractError):
        if cls.__module__ != errors.__name__:
            continue  # subclasses defined elsewhere bring their own titles
        assert cls.title in i18n.ERROR_TITLES, cls.__name__
        assert zh(cls.title) != cls.title, cls.__name__


def test_catalog_compiles_in_memory() -> None:
    zh = i18n.translations(i18n.ZH_CN)
    assert zh.gettext("Contracts") == "合同"
    plural = zh.ngettext("%(num)s contract found", "%(num)s contracts found", 2)
    assert plural == "找到 %(num)s 份合同"
    assert i18n.translations(i18n.EN).gettext("Contracts") == "Contracts"
    assert not list(PO_FILE.parent.glob("*.mo"))  # nothing compiled is kept in the repository


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_every_template_compiles(locale: str) -> None:
    env = environment(locale)
    for path in TEMPLATES_DIR.rglob("*.html"):
        env.get_template(path.relative_to(TEMPLATES_DIR).as_posix())


@pytest.mark.parametrize(("cookie", "header", "expected"), [
    (None, None, "en"),
    (None, "zh-CN,zh;q=0.9", "zh_CN"),
    (None, "zh", "zh_CN"),
    (None, "zh-Hans", "zh_CN"),
    (None, "en-US,en;q=0.9,zh-CN;q=0.8", "en"),
    (None, "fr-FR,zh-CN;q=0.5", "zh_CN"),
    (None, "de, fr;q=0.8", "en"),
    (None, "zh-TW", "en"),
    (None, "en;q=0.2, zh-CN;q=0.9", "zh_CN"),
    (None, "zh-CN;q=0, en", "en"),
    (None, "zh-CN;q=abc", "en"),
    ("en", "zh-CN", "en"),
    ("zh_CN", "en", "zh_CN"),
    ("klingon", "zh-CN", "zh_CN"),
])
def test_negotiation(cookie: str | None, header: str | None, expected: str) -> None:
    assert i18n.negotiate(cookie, header) == expected


def test_middleware_puts_the_locale_on_the_request() -> None:
    app = FastAPI()
    app.add_middleware(LocaleMiddleware)

    @app.get("/locale")
    def locale(request: Request) -> str:
        return str(request.state.locale)

    with TestClient(app) as client:
        assert client.get("/locale", headers={"Accept-Language": "zh-Hans"}).json() == "zh_CN"
        assert client.get("/locale").json() == "en"
        client.cookies.set(i18n.LANG_COOKIE, "zh_CN")
        assert client.get("/locale", headers={"Accept-Language": "en"}).json() == "zh_CN"
