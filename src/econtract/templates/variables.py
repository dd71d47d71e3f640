"""Typed template variables: what a template declares, and checking the values a caller gives.

A template declares each variable with a type (``text``, ``number``, ``money``, ``date``,
``party``), a label, whether it is required and an optional default. ``resolve`` turns the raw
values of an API call, a web form or a CSV row (strings or JSON values) into typed Python values,
and reports every problem at once — one entry per variable — so a caller can fix all of them in
one go. Pure: no database, no web.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from econtract.errors import ValidationFailed

NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_TEXT = 5000
MAX_MONEY = Decimal("999999999999.99")
"""The largest amount written out in Chinese capitals (below 1 万亿)."""


class VarType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    PARTY = "party"


@dataclass(frozen=True)
class Party:
    """A party of the contract named in the text (甲方, 乙方 …): name, and optional details."""

    name: str
    id_number: str = ""
    """A company's unified social credit code or a person's ID number, as given."""
    address: str = ""
    contact: str = ""

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Variable:
    name: str
    type: VarType
    label: str = ""
    required: bool = True
    default: Any = None
    help: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Variable:
        name = str(raw.get("name", ""))
        if not NAME.fullmatch(name):
            raise ValidationFailed(
                f"Variable name {name[:64]!r} must be 1-64 of a-z 0-9 _ starting with a letter.",
                code="template_invalid", details={"variable": name[:64]})
        try:
            var_type = VarType(str(raw.get("type", "text")))
        except ValueError:
            raise ValidationFailed(
                f"Variable {name}: type must be one of {', '.join(t.value for t in VarType)}.",
                code="template_invalid", details={"variable": name}) from None
        return cls(name=name, type=var_type, label=str(raw.get("label") or name)[:200],
                   required=bool(raw.get("required", True)), default=raw.get("default"),
                   help=str(raw.get("help") or "")[:500])

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type.value, "label": self.label,
                "required": self.required, "default": self.default, "help": self.help}


@dataclass
class _Problems:
    items: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.items.setdefault(name, message)


def parse_variables(raw: list[dict[str, Any]]) -> list[Variable]:
    """Declarations from JSON; names must be unique and defaults must fit their type."""
    variables = [Variable.from_dict(item) for item in raw]
    names = [v.name for v in variables]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationFailed(f"Variables declared twice: {', '.join(duplicates)}.",
                               code="template_invalid", details={"variables": duplicates})
    for variable in variables:
        if variable.default not in (None, ""):
            try:
                convert(variable, variable.default)
            except ValueError as exc:
                raise ValidationFailed(f"Variable {variable.name}: bad default ({exc}).",
                                       code="template_invalid",
                                       details={"variable": variable.name}) from None
    return variables


def resolve(variables: list[Variable], values: dict[str, Any]) -> dict[str, Any]:
    """Typed values for every declared variable, or one ``ValidationFailed`` listing all
    problems (``details.problems``: variable name → message); unknown names are refused too."""
    problems = _Problems()
    declared = {v.name for v in variables}
    for name in sorted(set(values) - declared):
        problems.add(name, "not a variable of this template")
    resolved: dict[str, Any] = {}
    for variable in variables:
        raw = values.get(variable.name)
        if _blank(raw):
            raw = variable.default
        if _blank(raw):
            if variable.required:
                problems.add(variable.name, "required")
            resolved[variable.name] = None
            continue
        try:
            resolved[variable.name] = convert(variable, raw)
        except ValueError as exc:
            problems.add(variable.name, str(exc))
    if problems.items:
        listing = "; ".join(f"{name}: {message}" for name, message in problems.items.items())
        raise ValidationFailed(f"Template variables are missing or invalid — {listing}.",
                               code="template_variables_invalid",
                               details={"problems": problems.items})
    return resolved


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def convert(variable: Variable, raw: Any) -> Any:
    """One value of ``variable``'s type; ``ValueError`` with a short reason otherwise."""
    if variable.type is VarType.TEXT:
        text = str(raw).strip()
        if len(text) > MAX_TEXT:
            raise ValueError(f"at most {MAX_TEXT} characters")
        return text
    if variable.type in (VarType.NUMBER, VarType.MONEY):
        return _decimal(raw, money=variable.type is VarType.MONEY)
    if variable.type is VarType.DATE:
        return _date(raw)
    return _party(raw)


def _decimal(raw: Any, *, money: bool) -> Decimal:
    if isinstance(raw, bool):
        raise ValueError("not a number")
    text = str(raw).strip().replace(",", "").replace("，", "")
    if money:
        text = text.removeprefix("¥").removeprefix("￥").strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not value.is_finite():
        raise ValueError("not a number")
    if money:
        if value < 0:
            raise ValueError("an amount cannot be negative")
        if value.as_tuple().exponent < -2:  # type: ignore[operator]
            raise ValueError("an amount has at most two decimals (fen)")
        if value > MAX_MONEY:
            raise ValueError("the amount is too large")
        return value.quantize(Decimal("0.01"))
    if abs(value) > Decimal("1e15"):
        raise ValueError("the number is too large")
    return value


def _date(raw: Any) -> date:
    if isinstance(raw, date):
        return raw
    text = str(raw).strip()
    match = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", text)
    if not match:
        raise ValueError("not a date (use YYYY-MM-DD)")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError("not a valid date") from None


def _party(raw: Any) -> Party:
    if isinstance(raw, Party):
        return raw
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise ValueError("a party is a name or an object with name, id_number, address, contact")
    unknown = set(raw) - {"name", "id_number", "address", "contact"}
    if unknown:
        raise ValueError(f"unknown party fields: {', '.join(sorted(unknown))}")
    name = str(raw.get("name") or "").strip()
    if not name:
        raise ValueError("a party needs a name")
    fields = {k: str(raw.get(k) or "").strip()[:300] for k in ("id_number", "address", "contact")}
    return Party(name=name[:300], **fields)


# --- Chinese capitals for amounts (大写金额) ----------------------------------------------------

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("", "拾", "佰", "仟")
_SECTIONS = ("", "万", "亿")


def money_in_capitals(amount: Decimal) -> str:
    """The amount in Chinese financial capitals, as written on contracts and cheques:
    ``Decimal("1004.50")`` → ``人民币壹仟零肆元伍角整``; ``0`` → ``人民币零元整``."""
    amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if amount < 0 or amount > MAX_MONEY:
        raise ValueError("amount out of range")
    yuan = int(amount)
    fen_total = int((amount - yuan) * 100)
    jiao, fen = divmod(fen_total, 10)
    integer = _integer_capitals(yuan)
    text = f"人民币{integer}元" if yuan else ""
    if jiao == 0 and fen == 0:
        return (text or "人民币零元") + "整"
    if not text:
        text = "人民币"
    if jiao:
        text += f"{_DIGITS[jiao]}角"
    elif yuan:
        text += "零"  # 壹佰元零伍分: a zero jiao between yuan and fen is written out
    text += f"{_DIGITS[fen]}分" if fen else "整"
    return text


def _integer_capitals(number: int) -> str:
    if number == 0:
        return ""
    sections: list[int] = []
    while number:
        number, section = divmod(number, 10_000)
        sections.append(section)
    parts: list[str] = []
    zero_pending = False
    for index in range(len(sections) - 1, -1, -1):
        section = sections[index]
        if section == 0:
            zero_pending = bool(parts)
            continue
        if parts and (zero_pending or section < 1000):
            parts.append("零")
        parts.append(_section_capitals(section) + _SECTIONS[index])
        zero_pending = False
    return "".join(parts)


def _section_capitals(section: int) -> str:
    digits = [int(d) for d in f"{section:04d}"]
    out: list[str] = []
    zero = False
    started = False
    for position, digit in enumerate(digits):
        unit = _UNITS[3 - position]
        if digit == 0:
            zero = started
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(_DIGITS[digit] + unit)
        started = True
    return "".join(out)
