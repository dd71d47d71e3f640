"""The starter templates shipped with econtract (``templates/starters/<key>.json`` + ``.html``).

劳动合同 (employment), 房屋租赁合同 (residential lease), 采购合同 (purchase) in Chinese and a mutual
NDA in English. An organisation installs them as ordinary templates it can then edit.
"""

from __future__ import annotations

import importlib.resources
import json
from dataclasses import dataclass
from functools import cache

from econtract.templates.variables import Variable, parse_variables

STARTER_KEYS = ("employment", "lease", "purchase", "nda")


@dataclass(frozen=True)
class Starter:
    key: str
    name: str
    description: str
    category: str
    locale: str
    variables: tuple[Variable, ...]
    body: str


@cache
def starters() -> tuple[Starter, ...]:
    folder = importlib.resources.files("econtract.templates") / "starters"
    loaded = []
    for key in STARTER_KEYS:
        spec = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        loaded.append(Starter(key=key, name=spec["name"], description=spec["description"],
                              category=spec["category"], locale=spec["locale"],
                              variables=tuple(parse_variables(spec["variables"])),
                              body=(folder / f"{key}.html").read_text(encoding="utf-8")))
    return tuple(loaded)


def starter(key: str) -> Starter:
    for item in starters():
        if item.key == key:
            return item
    raise KeyError(key)
