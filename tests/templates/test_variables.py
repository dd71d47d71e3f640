"""Typed template variables: conversion, every problem reported at once, Chinese capitals."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from econtract.errors import ValidationFailed
from econtract.templates.variables import Party, money_in_capitals, parse_variables, resolve

DECLARED = parse_variables([
    {"name": "employer", "type": "party"},
    {"name": "salary", "type": "money"},
    {"name": "start", "type": "date"},
    {"name": "months", "type": "number", "default": 3},
    {"name": "note", "type": "text", "required": False},
])


@pytest.mark.parametrize(("amount", "words"), [
    ("0", "人民币零元整"), ("0.05", "人民币伍分"), ("0.5", "人民币伍角整"), ("1", "人民币壹元整"),
    ("10", "人民币壹拾元整"), ("10.25", "人民币壹拾元贰角伍分"), ("100.05", "人民币壹佰元零伍分"),
    ("1004.50", "人民币壹仟零肆元伍角整"), ("10005", "人民币壹万零伍元整"),
    ("100000", "人民币壹拾万元整"), ("1000001", "人民币壹佰万零壹元整"),
    ("10010000", "人民币壹仟零壹万元整"), ("100000000", "人民币壹亿元整"),
    ("100001000", "人民币壹亿零壹仟元整"), ("12345.67", "人民币壹万贰仟叁佰肆拾伍元陆角柒分"),
    ("999999999999.99",
     "人民币玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
])
def test_money_in_chinese_capitals(amount: str, words: str) -> None:
    assert money_in_capitals(Decimal(amount)) == words


def test_values_are_typed() -> None:
    values = resolve(DECLARED, {"employer": {"name": "上海某某科技有限公司", "id_number": "9131"},
                                "salary": "¥12,500", "start": "2026年12月1日"})
    assert values["employer"] == Party(name="上海某某科技有限公司", id_number="9131")
    assert values["salary"] == Decimal("12500.00")
    assert values["start"] == date(2026, 12, 1)
    assert values["months"] == Decimal(3)  # the default
    assert values["note"] is None


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        resolve(DECLARED, {"salary": "12.345", "start": "2026-02-30", "stray": "x"})
    assert caught.value.code == "template_variables_invalid"
    assert caught.value.details["problems"] == {
        "employer": "required", "salary": "an amount has at most two decimals (fen)",
        "start": "not a valid date", "stray": "not a variable of this template"}


@pytest.mark.parametrize(("declaration", "code"), [
    ({"name": "Bad Name"}, "template_invalid"),
    ({"name": "x", "type": "colour"}, "template_invalid"),
    ({"name": "x", "type": "money", "default": "lots"}, "template_invalid"),
])
def test_bad_declarations_are_refused(declaration: dict[str, object], code: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_variables([declaration])
    assert caught.value.code == code


def test_negative_money_and_bad_party() -> None:
    with pytest.raises(ValidationFailed) as caught:
        resolve(DECLARED, {"employer": {"nom": "x"}, "salary": "-1", "start": "2026-01-01"})
    problems = caught.value.details["problems"]
    assert problems["salary"] == "an amount cannot be negative"
    assert "unknown party fields" in problems["employer"]
