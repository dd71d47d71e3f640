"""Meta-tests: the documentation and the public shapes stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from econtract import errors
from econtract.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(ECONTRACT_[A-Z_]+)` \|", readme, flags=re.M))
    expected = {f"ECONTRACT_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected


def test_readme_starts_with_the_two_commands_in_both_languages() -> None:
    head = (ROOT / "README.md").read_text(encoding="utf-8")[:600]
    assert head.count("make run") >= 2 and head.count("make test") >= 2
    assert "安装" in head


def test_error_codes_are_unique_and_documented() -> None:
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.EContractError)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    doc = errors.__doc__ or ""
    for cls in classes:
        assert cls.__name__ in doc and cls.code in doc, cls


def test_ci_runs_exactly_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "make test" in script


def test_signing_exports_resolve() -> None:
    import econtract.signing as signing

    for name in signing.__all__:
        assert getattr(signing, name) is not None, name


def test_pyhanko_is_imported_only_by_the_signing_core() -> None:
    for path in (ROOT / "src" / "econtract").rglob("*.py"):
        relative = path.relative_to(ROOT / "src" / "econtract").as_posix()
        if relative.startswith(("signing/", "pki/")):
            continue
        text = path.read_text(encoding="utf-8")
        assert "import pyhanko" not in text and "from pyhanko" not in text, relative


def test_signing_all_matches_the_lazy_table() -> None:
    import econtract.signing as signing

    assert sorted(signing.__all__) == sorted(signing._EXPORTS)
