"""Keyword search and the filtered contract list on 100,000 contracts, on SQLite and PostgreSQL.

    .venv/bin/python bench/search.py [--contracts 100000] [--database sqlite|postgresql|both]
                                     [--rounds 20] [--warmup 1] [--max-seconds 180]
                                     [--database-url URL] [--explain] [--json OUT]

Issue 5, acceptance point 4: search finds a contract by a Chinese word that occurs only in its
body text, on both databases, and search and the filtered list answer with p95 < 100 ms at
100,000 contracts.

Set-up (not timed; its time and the database size are printed):

* a throwaway installation in a temporary directory (``bench/_install.py``: ``bootstrap.initialise``
  makes the organisation and its owner). SQLite lives in that directory. For PostgreSQL a
  throwaway cluster is started with ``tests.conftest.PostgresServer`` (``initdb --locale=C.UTF-8``,
  migrated template) and a fresh database made from it, or ``--database-url`` names an empty
  migrated database;
* ``--contracts`` contracts inserted in bulk with SQLAlchemy Core ``insert()`` (executemany, one
  transaction per batch), **not** through ``contracts.service.create``: that runs a sandboxed
  child process per upload (about a second each): more than a day for 100,000. The rows are what the
  service would write: titles from a pool of Chinese and English contract names with numbers,
  1-3 signers (Chinese and Latin names, e-mails), tags, categories, statuses spread over the
  lifecycle with matching signer states, creation over 3 years, effective and expiry dates; one
  ``contract_texts`` row each (``content`` from ``search.metadata_text`` itself, ``body`` 300-1,500
  characters of Chinese contract prose assembled from about 200 fragments, with rare marker
  words planted in known contracts) and its search rows exactly as ``search.index`` writes them
  (SQLite: ``contract_search_docs`` and the two FTS5 tables; PostgreSQL: ``contract_search``).
  Fixed random seed; ``ANALYZE`` at the end (``VACUUM ANALYZE`` on PostgreSQL, as autovacuum
  would, which also empties the GIN pending lists);
* two contracts created for real through ``contracts.service.create`` (a PDF made with WeasyPrint
  whose body has a rare Chinese word), then correctness checks (PASS/FAIL): search finds each of
  them, and exactly the contracts the markers were planted in, among all the others.

Cases, round-robin (``_common.run_rounds``), each in its own read-only unit as the owner, through
``contracts.service.list_`` with ``per_page`` 20 (its COUNT, page query and the eager loads of the
page's signers, tags, clauses and attachments all count; the COUNT is also timed on its own):
Chinese words of 2 characters (below the trigram length), 3 and 4 characters (common and rare),
an English word, two words together, a word found in one contract, the plain list, a filtered
list without a query (status + category, sorted by expiry), a query with filters, the categories
for the filter form, and ``search.highlight`` for a page of 20 results. Target: p95 < 100 ms per
case. The timed rounds of a database stop early once ``--max-seconds`` have passed (at least 5
rounds), so that ``make bench`` stays bounded while some cases take seconds each.
``--explain`` prints each case's query plans (PostgreSQL: ``EXPLAIN ANALYZE``). Exit status 0
always.
"""

from __future__ import annotations

import argparse
import importlib
import math
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast

import _common as common
from _install import Installation, installation
from sqlalchemy import Engine, Table, event, func, insert, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from econtract.contracts import search
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract, ContractTag, ContractText
from econtract.contracts.schemas import ContractCreate, ContractFilter
from econtract.contracts.states import Status
from econtract.db import Base, is_postgres, read_only_unit
from econtract.parties.models import Signer

REPO = Path(__file__).resolve().parent.parent
TARGET_MS = 100.0
BATCH = 2_000
MIN_ROUNDS = 5
SEED = 20261129
#: The fill's "today": creation dates run back 3 years from here (fixed, so runs compare).
ANCHOR = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)

# --- the corpus --------------------------------------------------------------------------------

CITIES = ("上海", "北京", "深圳", "杭州", "广州", "成都", "苏州", "南京", "武汉", "西安", "天津",
          "重庆", "青岛", "厦门", "宁波")
CORES = ("宏达", "华信", "鼎盛", "恒通", "金桥", "东方", "远景", "中科", "瑞丰", "新城", "安泰",
         "博远", "嘉禾", "星辰", "万邦", "泰和", "智联", "海川")
FORMS = ("贸易有限公司", "科技有限公司", "实业集团有限公司", "物业管理有限公司",
         "建设工程有限公司", "信息技术有限公司", "物流有限公司", "文化传媒有限公司")
EN_COMPANIES = ("Acme Trading Ltd", "Northwind Logistics", "Blue Harbor Tech", "Globex GmbH",
                "Sakura Components K.K.", "Pacific Rim Foods", "Orion Software Inc.",
                "Helvetia Instruments AG", "Maple Leaf Consulting")
#: Contract kinds: (name, category, English?).
KINDS = (("采购合同", "采购", False), ("销售合同", "销售", False),
         ("房屋租赁合同", "租赁", False), ("设备租赁合同", "租赁", False),
         ("劳动合同", "劳动", False), ("保密协议", "保密", False),
         ("技术服务合同", "服务", False), ("借款合同", "借款", False),
         ("战略合作协议", "合作", False), ("软件开发合同", "技术", False),
         ("设备维修保养合同", "服务", False), ("物流运输合同", "物流", False),
         ("广告发布合同", "广告", False), ("委托代理协议", "代理", False),
         ("装修工程合同", "工程", False), ("特许经营合同", "特许经营", False),
         ("Service Agreement", "服务", True), ("Non-Disclosure Agreement", "保密", True),
         ("Lease Agreement", "租赁", True), ("Supply Agreement", "采购", True),
         ("Software License Agreement", "技术", True), ("Distribution Agreement", "代理", True),
         ("Consulting Agreement", "服务", True))
TAGS = ("重点客户", "年度框架", "加急", "华东区", "华南区", "华北区", "续签", "VIP", "export",
        "法务已审", "含附件", "集团内部", "政府采购", "外资")
SURNAMES = (("张", "zhang"), ("王", "wang"), ("李", "li"), ("刘", "liu"), ("陈", "chen"),
            ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
            ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
            ("郭", "guo"), ("何", "he"), ("林", "lin"), ("罗", "luo"), ("高", "gao"),
            ("欧阳", "ouyang"), ("司马", "sima"))
GIVEN = (("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"),
         ("磊", "lei"), ("强", "qiang"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"),
         ("艳", "yan"), ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"),
         ("秀英", "xiuying"), ("桂英", "guiying"), ("建华", "jianhua"), ("志强", "zhiqiang"),
         ("晓东", "xiaodong"), ("丽娟", "lijuan"), ("海燕", "haiyan"), ("子涵", "zihan"),
         ("雨桐", "yutong"), ("浩然", "haoran"), ("思远", "siyuan"))
FIRST = ("Anna", "Ben", "Carlos", "Diana", "Ethan", "Fatima", "George", "Hannah", "Ivan",
         "Julia", "Kenji", "Laura", "Mohammed", "Nora", "Oliver", "Priya", "Rosa", "Samuel")
LAST = ("Smith", "Müller", "García", "Johnson", "Rossi", "Kim", "Nguyen", "Brown", "Schmidt",
        "Dubois", "Tanaka", "Silva", "Wilson", "Novak")
DOMAINS = ("example.com", "example.cn", "corp.example", "mail.example.org")

HEADINGS = ("定义与解释", "合同标的", "价款与支付", "交付与验收", "质量保证", "知识产权",
            "保密义务", "违约责任", "不可抗力", "争议解决", "合同期限", "合同的解除", "通知与送达",
            "税费承担", "履约保证金", "售后服务", "廉洁条款", "个人信息保护", "转让与分包", "保险",
            "租金与押金", "陈述与保证", "合同变更", "法律适用", "附则")
OPENERS = ("", "", "", "除本合同另有约定外，", "在本合同有效期内，", "经双方协商一致，",
           "如遇特殊情况，", "自本合同生效之日起，", "未经对方书面同意，", "在收到书面通知后，",
           "根据相关法律法规的规定，", "为确保项目顺利实施，", "在验收合格后，",
           "在不违反法律规定的前提下，", "若一方未履行本条约定的义务，", "双方确认，",
           "在合同履行过程中，", "按照国家标准和行业惯例，", "在每个结算周期届满后，",
           "本条所称工作日不包括法定节假日，")
SUBJECTS = ("甲方", "乙方", "双方", "出租人", "承租人", "卖方", "买方", "供应商", "委托方",
            "受托方", "丙方", "任何一方", "守约方", "违约方", "项目负责人", "服务提供方",
            "用人单位", "劳动者", "借款人", "贷款人")
PREDICATES = (
    "应在{days}日内支付合同总价款的{pct}%", "应按时缴纳租金及物业管理费",
    "应向对方支付相当于合同总额{pct}%的违约金", "不得将本合同项下的权利义务转让给第三方",
    "应对在履行本合同过程中知悉的商业秘密承担保密义务",
    "应于每月{day}日前将{item}交付至{city}指定地点", "有权在不可抗力事件消除后继续履行合同",
    "应当在{days}个工作日内书面通知对方", "应提供合法有效的增值税专用发票",
    "应按照约定的技术标准完成开发工作", "应在收到押金后出具书面收据",
    "应保证所交付的{item}符合国家质量标准", "有权要求对方赔偿由此造成的全部直接损失",
    "应妥善保管对方提供的资料和样品", "应按照{city}市场价格调整服务费用",
    "应在合同终止后{days}日内返还全部保密资料", "不得以任何方式向第三方披露本合同内容",
    "应为劳动者缴纳社会保险和住房公积金", "应按月支付不低于当地最低工资标准的劳动报酬",
    "可以单方解除本合同并要求赔偿", "应承担因延迟交付而产生的违约金",
    "应配合对方办理相关审批和备案手续", "应在验收前完成{item}的安装调试",
    "有权对{item}的质量提出书面异议", "应自行承担履行本合同所需的一切费用",
    "应在租赁期满后将房屋恢复原状并交还", "不得擅自转租、转借或改变房屋用途",
    "应按照年利率{pct}%支付借款利息", "应在借款到期日一次性归还全部本金",
    "应指定专人负责项目的沟通与协调", "应遵守对方的安全管理制度和廉洁规定",
    "有权对服务质量进行定期考核", "应在{days}日内修复{item}存在的缺陷",
    "应对其员工的行为承担连带责任", "应保证其拥有签署本合同的完全权利和授权",
    "应在每季度结束后提交书面工作报告", "应按照约定比例分配合作收益",
    "不得利用对方的商标或商号从事任何活动", "应承担{item}在运输途中的毁损灭失风险",
    "应购买足额的财产保险和第三者责任险", "应按照发票金额的{pct}%预付货款",
    "应在合同签订后{days}日内支付履约保证金", "应在保修期内提供免费的上门维修服务",
    "应在每年{day}月前完成年度对账", "有权暂停履行合同直至对方提供担保",
    "应依法处理所收集的个人信息", "应在知悉数据泄露后立即采取补救措施",
    "应接受对方或其委托的审计机构的检查", "不得在合作期间与对方的竞争对手开展同类合作",
    "应将{item}的知识产权归属于甲方", "应保证广告内容真实合法", "应在{city}设立售后服务网点",
    "应按照施工图纸和设计变更单组织施工", "应对工程质量承担终身责任",
    "应在竣工验收后{days}日内办理结算", "应按照特许经营手册统一经营标准",
    "应支付首期特许经营费人民币{amount}元", "应按照委托权限代为办理相关事务",
)
TAILS = ("。", "。", "。", "，但因对方原因造成的除外。", "，逾期未履行的视为违约。",
         "，具体以双方确认的清单为准。", "，费用由责任方承担。", "，双方另有约定的从其约定。",
         "，并承担相应的法律责任。", "，相关费用已包含在合同总价款中。")
SENTENCES = (
    "本合同一式两份，甲乙双方各执一份，具有同等法律效力。",
    "因本合同引起的或与本合同有关的任何争议，双方应友好协商解决；协商不成的，"
    "提交{city}仲裁委员会仲裁。",
    "本合同自双方签字并加盖公章之日起生效。",
    "本合同未尽事宜，由双方另行签订补充协议，补充协议与本合同具有同等法律效力。",
    "任何一方因不可抗力不能履行合同的，应及时通知对方，并在合理期限内提供证明。",
    "合同总价款为人民币{amount}元（含税），大写金额以附件为准。",
    "本合同的订立、效力、解释、履行及争议的解决均适用中华人民共和国法律。",
    "一方违约的，应赔偿守约方因此遭受的全部损失，包括但不限于诉讼费、律师费和差旅费。",
    "双方的通知应以书面形式送达本合同首页载明的地址。",
    "租赁期限为{years}年，自{year}年{day}月1日起计算。",
    "押金为{months}个月租金，租赁期满且承租人无违约行为的，出租人应无息退还押金。",
    "试用期为{months}个月，试用期工资不低于转正工资的百分之八十。",
    "本合同附件包括技术规格书、报价单和验收标准，附件为本合同不可分割的组成部分。",
    "本合同以中文书写，英文译本（English version）仅供参考，两者不一致时以中文为准。",
    "付款币种为人民币（RMB）；涉外部分以美元（USD）结算，"
    "汇率按付款当日中国人民银行公布的中间价计算。",
    "货物的交付条件为 FOB {city_en}，风险自货物越过船舷时转移。",
    "乙方应按照 ISO 9001 质量管理体系的要求组织生产。",
    "软件交付物包括源代码、可执行程序和用户手册。",
    "逾期付款的，每逾期一日按未付金额的万分之五支付违约金。",
    "违约金不足以弥补损失的，守约方有权继续追偿。", "双方确认已仔细阅读并充分理解本合同全部条款。",
    "本合同的任何修改须经双方书面确认方为有效。", "甲方联系人：{name}，联系电话以双方备案为准。",
    "乙方开户银行：{city}分行，账号以双方书面确认为准。",
    "保修期为{years}年，自最终验收合格之日起计算。",
    "质量保证金为合同总价款的{pct}%，在保修期满后无息退还。",
    "合作期间产生的知识产权由双方共同所有，另有约定的除外。",
    "本协议项下的保密期限为合同终止后{years}年。", "运输过程中发生的货损由承运人按照实际损失赔偿。",
    "装修工程的保修期限按照国家有关规定执行。", "劳动者应遵守用人单位依法制定的规章制度。",
    "用人单位应为劳动者提供必要的劳动保护和劳动条件。",
    "借款用途为补充日常经营所需流动资金，不得挪作他用。",
    "广告发布期间为{months}个月，发布媒介以附件为准。",
    "代理人在授权范围内实施的行为，其法律后果由委托人承担。",
    "特许经营期限届满后，被特许人享有同等条件下的续约优先权。",
)
ITEMS = ("货物", "设备", "软件系统", "技术资料", "样品", "办公用品", "原材料", "零部件",
         "服务器", "装修材料", "宣传物料", "检测报告")
CITY_EN = ("Shanghai", "Ningbo", "Qingdao", "Xiamen", "Tianjin", "Shenzhen")
NUMERALS = "零一二三四五六七八九"

#: Marker words planted into the body of this many filler contracts (found nowhere else).
MARKERS = {"琥珀港": 20, "鲸落计划": 5, "玄鸟条款": 1, "麒麟": 5}
#: Contracts made through ``contracts.service.create``: (title, rare word only in the PDF body).
REAL = (("检索验收合同（一）", "饕餮纹样"), ("检索验收合同（二）", "貔貅"))
STATUS_WEIGHTS = {Status.DRAFT: 8, Status.PENDING_APPROVAL: 3, Status.APPROVED: 2,
                  Status.SENT: 8, Status.SIGNING: 6, Status.COMPLETED: 52, Status.DECLINED: 3,
                  Status.VOIDED: 5, Status.EXPIRED: 4, Status.LAPSED: 9}


def chinese_number(n: int) -> str:
    """1-99 in Chinese numerals, as clause numbers are written (第十二条)."""
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else NUMERALS[tens] + "十")
    return head + (NUMERALS[ones] if ones else "")


@dataclass
class _Party:
    name: str
    email: str


@dataclass
class _Tag:
    tag: str


@dataclass
class _Meta:
    """What ``search.metadata_text`` reads of a contract (duck-typed stand-in)."""

    title: str
    category: str | None
    signers: list[_Party]
    tags: list[_Tag]


@dataclass
class Batch:
    contracts: list[dict[str, Any]] = field(default_factory=list)
    signers: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    texts: list[dict[str, Any]] = field(default_factory=list)
    search: list[dict[str, Any]] = field(default_factory=list)
    """Contract id, organisation id and ``search.searchable_text``, for the search rows."""


class Corpus:
    """Deterministic, realistic contract rows (fixed seed)."""

    def __init__(self, count: int, org_id: uuid.UUID, owner_id: uuid.UUID) -> None:
        self.rng = random.Random(SEED)
        self.count, self.org_id, self.owner_id = count, org_id, owner_id
        self.planted: dict[str, list[int]] = {
            word: sorted(self.rng.sample(range(count), min(n, count)))
            for word, n in MARKERS.items()}
        self.marker_at: dict[int, list[str]] = {}
        for word, positions in self.planted.items():
            for i in positions:
                self.marker_at.setdefault(i, []).append(word)
        self.ids: list[uuid.UUID] = []
        self._statuses = list(STATUS_WEIGHTS)
        self._weights = list(STATUS_WEIGHTS.values())

    def _fill(self, template: str) -> str:
        r = self.rng
        return template.format(
            days=r.choice((3, 5, 7, 10, 15, 30)), pct=r.choice((5, 10, 20, 30, 3, 8)),
            day=r.randint(1, 12), item=r.choice(ITEMS), city=r.choice(CITIES),
            amount=f"{r.randint(1, 9999) * 100:,}", years=r.randint(1, 5),
            year=r.randint(2023, 2027), months=r.randint(1, 6), city_en=r.choice(CITY_EN),
            name=self._person()[0])

    def sentence(self) -> str:
        r = self.rng
        if r.random() < 0.3:
            return self._fill(r.choice(SENTENCES))
        return (r.choice(OPENERS) + r.choice(SUBJECTS) + self._fill(r.choice(PREDICATES))
                + r.choice(TAILS))

    def body(self, index: int) -> str:
        r = self.rng
        length = r.randint(300, 1500)
        parts: list[str] = []
        size, clause = 0, 0
        while size < length:
            if clause == 0 or r.random() < 0.25:
                clause += 1
                parts.append(f"\n第{chinese_number(clause)}条 {r.choice(HEADINGS)}\n")
            parts.append(self.sentence())
            size += len(parts[-1])
        prose = "".join(parts).lstrip("\n")[:length]
        for word in self.marker_at.get(index, ()):
            cut = r.randint(0, len(prose))
            prose = f"{prose[:cut]}关于{word}的具体安排，双方另行签署补充协议。{prose[cut:]}"
        return prose

    def _person(self) -> tuple[str, str]:
        r = self.rng
        if r.random() < 0.7:
            (sur, sur_py), (giv, giv_py) = r.choice(SURNAMES), r.choice(GIVEN)
            return sur + giv, f"{sur_py}.{giv_py}{r.randint(1, 999)}@{r.choice(DOMAINS)}"
        first, last = r.choice(FIRST), r.choice(LAST)
        ascii_last = last.replace("ü", "ue").replace("í", "i")
        return (f"{first} {last}",
                f"{first.lower()}.{ascii_last.lower()}{r.randint(1, 99)}@{r.choice(DOMAINS)}")

    def title(self) -> tuple[str, str | None]:
        r = self.rng
        kind, category, english = r.choice(KINDS)
        number = f"{r.randint(2023, 2026)}-{r.randint(1, 99999):05d}"
        if english:
            title = f"{kind} No. {number} ({r.choice(EN_COMPANIES)})"
        elif r.random() < 0.5:
            title = f"{r.choice(CITIES)}{r.choice(CORES)}{r.choice(FORMS)}{kind}（{number}）"
        else:
            title = f"{kind}【{number}】{r.choice(CITIES)}{r.choice(CORES)}项目"
        return title, (None if r.random() < 0.1 else category)

    def batch(self, start: int, stop: int) -> Batch:
        r = self.rng
        out = Batch()
        for i in range(start, stop):
            cid = uuid.UUID(int=r.getrandbits(128), version=4)
            self.ids.append(cid)
            title, category = self.title()
            status = r.choices(self._statuses, self._weights)[0]
            created = ANCHOR - timedelta(seconds=r.randint(0, 3 * 365 * 86400))
            changed = min(ANCHOR, created + timedelta(hours=r.randint(0, 24 * 40)))
            effective: date | None = (created + timedelta(days=r.randint(0, 30))).date()
            expiry: date | None = None
            if r.random() < 0.85 and effective is not None:
                expiry = effective + timedelta(days=365 * r.randint(1, 3))
            if status is Status.LAPSED:
                effective = (created - timedelta(days=400)).date()
                expiry = (created + timedelta(days=r.randint(1, 60))).date()
            open_ = status in (Status.SENT, Status.SIGNING)
            out.contracts.append({
                "id": cid, "org_id": self.org_id, "owner_id": self.owner_id, "title": title,
                "status": status.value, "category": category, "effective_date": effective,
                "expiry_date": expiry,
                "sign_deadline": created + timedelta(days=r.choice((7, 14, 30))) if open_
                else None,
                "created_at": created, "updated_at": changed, "status_changed_at": changed,
                "void_reason": "双方协商终止" if status is Status.VOIDED else None,
                "routing": "sequential" if r.random() < 0.8 else "parallel",
                "reminders_sent": r.randint(0, 2) if open_ else 0,
            })
            parties = self._signers(out, cid, status, created, changed)
            tags = sorted(set(r.sample(TAGS, r.choice((0, 0, 1, 1, 2, 3)))))
            out.tags += [{"contract_id": cid, "tag": t} for t in tags]
            meta = _Meta(title, category, parties, [_Tag(t) for t in tags])
            content = search.metadata_text(cast(Contract, meta))
            body = self.body(i)
            out.texts.append({"contract_id": cid, "org_id": self.org_id, "body": body,
                              "content": content, "updated_at": changed})
            out.search.append({"contract_id": cid, "org_id": self.org_id,
                               "text": search.searchable_text(content, body)})
        return out

    def _signers(self, out: Batch, cid: uuid.UUID, status: Status, created: datetime,
                 changed: datetime) -> list[_Party]:
        r = self.rng
        count = r.choices((1, 2, 3), (3, 5, 2))[0]
        parties: list[_Party] = []
        emails: set[str] = set()
        while len(parties) < count:
            name, email = self._person()
            if email not in emails:
                emails.add(email)
                parties.append(_Party(name, email))
        declined_one = r.randrange(count)
        for n, party in enumerate(parties):
            signed = (status in (Status.COMPLETED, Status.LAPSED)
                      or (status is Status.SIGNING and n == 0))
            state = {Status.SENT: "invited" if n == 0 else "waiting",
                     Status.SIGNING: "signed" if n == 0 else "invited",
                     Status.EXPIRED: "invited",
                     Status.DECLINED: "declined" if n == declined_one else "invited",
                     }.get(status, "signed" if signed else "waiting")
            out.signers.append({
                "id": uuid.UUID(int=r.getrandbits(128), version=4), "contract_id": cid,
                "org_id": self.org_id, "name": party.name, "email": party.email,
                "order": n + 1, "role": "signer", "status": state, "created_at": created,
                "signed_at": changed if state == "signed" else None,
                "declined_at": changed if state == "declined" else None,
                "decline_reason": "条款不接受" if state == "declined" else None,
                "auth_method": "email_otp", "otp_failures": 0, "access_code_failures": 0})
        return parties


@dataclass(frozen=True)
class Fill:
    seconds: float
    contracts: int
    signers: int
    tags: int
    body_chars: int
    sizes: dict[str, int]


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def insert_search_rows(conn: Connection, rows: Sequence[Mapping[str, Any]], *,
                       sqlite: bool) -> None:
    """What ``search.index`` writes for each of ``rows``, in bulk. On SQLite the rowids follow
    on from the last one, as ``AUTOINCREMENT`` would give them one by one."""
    if not sqlite:
        conn.execute(insert(search.SEARCH), [
            {"contract_id": r["contract_id"], "text": r["text"],
             "grams": search.grams_of(r["text"])} for r in rows])
        return
    last = conn.execute(select(func.max(search.DOCS.c.id))).scalar_one() or 0
    numbered = list(enumerate(rows, start=last + 1))
    conn.execute(insert(search.DOCS), [
        {"id": rowid, "contract_id": r["contract_id"].hex, "org_id": r["org_id"].hex}
        for rowid, r in numbered])
    conn.execute(insert(search.TRIGRAMS), [{"rowid": rowid, "text": r["text"]}
                                           for rowid, r in numbered])
    conn.execute(insert(search.GRAMS), [{"rowid": rowid, "grams": search.gram_tokens(r["text"])}
                                        for rowid, r in numbered])


def fill(inst: Installation, count: int) -> tuple[Corpus, Fill]:
    """``count`` contracts in batches of ``BATCH``, one transaction each; then ANALYZE."""
    ctx = inst.owner_ctx
    assert ctx.org_id is not None and ctx.actor.id is not None
    corpus = Corpus(count, ctx.org_id, ctx.actor.id)
    engine = inst.rt.engine
    sqlite = engine.dialect.name == "sqlite"
    start = time.perf_counter()
    signers = tags = chars = 0
    for first in range(0, count, BATCH):
        rows = corpus.batch(first, min(count, first + BATCH))
        with engine.begin() as conn:
            conn.execute(insert(_table(Contract)), rows.contracts)
            conn.execute(insert(_table(Signer)), rows.signers)
            if rows.tags:
                conn.execute(insert(_table(ContractTag)), rows.tags)
            conn.execute(insert(_table(ContractText)), rows.texts)
            insert_search_rows(conn, rows.search, sqlite=sqlite)
        signers, tags = signers + len(rows.signers), tags + len(rows.tags)
        chars += sum(len(t["body"]) for t in rows.texts)
        done = min(count, first + BATCH)
        print(f"\r  filled {done:,}/{count:,} ({time.perf_counter() - start:.0f} s)", end="",
              file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return corpus, Fill(time.perf_counter() - start, count, signers, tags, chars, {})


def analyse(engine: Engine) -> float:
    start = time.perf_counter()
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        raw = engine.raw_connection()  # outside any transaction: fold the WAL into the file
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()  # fresh connections read the new statistics
    return time.perf_counter() - start


def sizes(engine: Engine) -> dict[str, int]:
    """Bytes on disk: the whole database, and the search tables and indexes."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            path = Path(str(engine.url.database))
            out = {"database file": path.stat().st_size}
            try:
                rows = conn.exec_driver_sql(
                    "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").all()
            except Exception:  # dbstat is a compile-time option
                return out
            per = {str(name): int(n) for name, n in rows}
            out["contract_texts"] = per.get("contract_texts", 0)
            for part, prefix in (("contract_search_docs (+ its unique index)", "_docs"),
                                 ("contract_search_trgm (FTS5 trigram index)", "_trgm"),
                                 ("contract_search_grams (FTS5 gram index)", "_grams")):
                out[part] = sum(n for name, n in per.items()
                                if name.startswith("contract_search" + prefix)
                                or name == f"sqlite_autoindex_contract_search{prefix}_1")
            out["contracts (+ its indexes)"] = sum(
                n for name, n in per.items()
                if name == "contracts" or name.startswith("ix_contracts_")
                or name == "sqlite_autoindex_contracts_1")
            return out
        queries = {
            "database": "pg_database_size(current_database())",
            "contract_texts (heap + TOAST)": "pg_table_size('contract_texts')",
            "contract_search (heap + TOAST: text, grams)": "pg_table_size('contract_search')",
            "ix_contract_search_text_trgm (GIN)":
                "pg_relation_size('ix_contract_search_text_trgm')",
            "ix_contract_search_grams (GIN)": "pg_relation_size('ix_contract_search_grams')",
            "contracts (+ its indexes)": "pg_total_relation_size('contracts')",
        }
        return {what: int(conn.exec_driver_sql(f"SELECT {size}").scalar_one())
                for what, size in queries.items()}


def versions(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return {"sqlite": sqlite3.sqlite_version}
        return {"postgresql": str(conn.exec_driver_sql("SHOW server_version").scalar_one()),
                "pg_trgm": str(conn.exec_driver_sql(
                    "SELECT extversion FROM pg_extension WHERE extname = 'pg_trgm'"
                ).scalar_one())}


# --- correctness -------------------------------------------------------------------------------


def rare_pdf(word: str) -> bytes:
    from econtract.templates import render

    html = render.render_html(
        f"<h1>补充协议</h1><p>第一条 双方同意，关于{word}的图样与说明，以本协议附件为准。</p>"
        "<p>第二条 本协议自双方签字之日起生效，一式两份，双方各执一份。</p>", {},
        title="补充协议")
    return render.render_pdf(html).pdf


def create_real(inst: Installation) -> dict[str, uuid.UUID]:
    """The contracts of ``REAL``, through ``contracts.service.create`` (sandbox and all)."""
    made = {}
    for title, word in REAL:
        contract_in = ContractCreate.model_validate({
            "title": title, "category": "合作",
            "signers": [{"name": "欧阳娜娜", "email": "nana.ouyang@example.com"}]})
        with inst.rt.uow() as session:
            contract = contracts.create(session, inst.owner_ctx, blobs=inst.rt.blobs,
                                        limits=inst.rt.limits, contract_in=contract_in,
                                        document=contracts.Upload("contract.pdf",
                                                                  rare_pdf(word)))
            made[word] = contract.id
    return made


def found(inst: Installation, q: str) -> tuple[set[uuid.UUID], int]:
    with read_only_unit(inst.rt.engine) as session:
        rows, total = contracts.list_(session, inst.owner_ctx,
                                      filters=ContractFilter(q=q, per_page=50))
        return {c.id for c in rows}, total


def checks(inst: Installation, corpus: Corpus, real: Mapping[str, uuid.UUID]) -> list[str]:
    lines = []

    def check(label: str, ok: bool, detail: str) -> None:
        lines.append(f"{'PASS' if ok else 'FAIL'}  {label}: {detail}")

    for word, contract_id in real.items():
        ids, total = found(inst, word)
        check(f"created through the service, word only in the PDF body: {word!r}",
              ids == {contract_id} and total == 1, f"{total} found")
    for word, positions in corpus.planted.items():
        ids, total = found(inst, word)
        want = {corpus.ids[i] for i in positions}
        check(f"planted in {len(want)} filler contract(s): {word!r}",
              ids == want and total == len(want), f"{total} found")
    sample = corpus.ids[len(corpus.ids) // 2]
    with read_only_unit(inst.rt.engine) as session:
        contract = session.get(Contract, sample)
        row = session.get(ContractText, sample)
        assert contract is not None and row is not None
        same = (row.content == search.metadata_text(contract)
                and indexed_as(session, sample, search.searchable_text(row.content, row.body)))
    check("filler rows = what search.index writes (content, search rows)", same, str(sample))
    return lines


def indexed_as(session: Session, contract_id: uuid.UUID, text: str) -> bool:
    """Whether the search rows of ``contract_id`` hold ``text``. PostgreSQL: equal text and
    grams. SQLite's FTS5 tables keep no text: its one rowid must match the whole text as one
    phrase, and every gram."""
    if is_postgres(session):
        row = session.execute(select(search.SEARCH.c.text, search.SEARCH.c.grams).where(
            search.SEARCH.c.contract_id == contract_id)).one()
        return row.text == text and list(row.grams) == search.grams_of(text)
    rowid = session.execute(select(search.DOCS.c.id).where(
        search.DOCS.c.contract_id == contract_id.hex)).scalar_one()
    found = []
    for fts, query in ((search.TRIGRAMS, '"' + text.replace('"', '""') + '"'),
                       (search.GRAMS, search.gram_tokens(text))):
        found.append(session.execute(select(fts.c.rowid).where(
            literal_column(fts.name).op("MATCH")(query), fts.c.rowid == rowid)).all())
    return all(rows == [(rowid,)] for rows in found)


# --- timed cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    name: str
    label: str
    filters: ContractFilter


def queries() -> list[Query]:
    def q(name: str, label: str, **filters: Any) -> Query:
        return Query(name, label, ContractFilter.model_validate({"per_page": 20, **filters}))

    return [
        q("zh2 common", "2 characters, common: 押金", q="押金"),
        q("zh2 rare", "2 characters, rare (5 contracts): 麒麟", q="麒麟"),
        q("zh3 common", "3 characters, common: 违约金", q="违约金"),
        q("zh3 rare", "3 characters, rare (20 contracts): 琥珀港", q="琥珀港"),
        q("zh4 common", "4 characters, common: 不可抗力", q="不可抗力"),
        q("zh4 rare", "4 characters, rare (5 contracts): 鲸落计划", q="鲸落计划"),
        q("english", "English word: lease", q="lease"),
        q("two words", "two words: 违约金 不可抗力", q="违约金 不可抗力"),
        q("one contract", "rare word, 1 contract: 玄鸟条款", q="玄鸟条款"),
        q("plain list", "no query, no filter (newest first)"),
        q("filtered list", "no query: status sent+signing, category 采购, by expiry",
          status=["sent", "signing"], category="采购", sort="expiry_date"),
        q("q + filters", "违约金 + status completed + category 租赁",
          q="违约金", status=["completed"], category="租赁"),
    ]


class Statements:
    """Times the COUNT statements of ``list_`` and keeps the SQL of each case (for EXPLAIN)."""

    def __init__(self, engine: Engine) -> None:
        self.count = common.ZERO
        self.recording: list[tuple[str, Any]] | None = None
        self._start = common.ZERO
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Connection, _cursor: Any, statement: str, parameters: Any,
                _context: Any, _many: bool) -> None:
        if self.recording is not None:
            self.recording.append((statement, parameters))
        self._start = common.Timing.start()

    def _after(self, _conn: Connection, _cursor: Any, statement: str, _parameters: Any,
               _context: Any, _many: bool) -> None:
        if statement.startswith("SELECT count(*)"):
            self.count = self.count + self._start.since()

    def take(self) -> common.Timing:
        taken, self.count = self.count, common.ZERO
        return taken


def cases(inst: Installation, statements: Statements,
          page: Sequence[uuid.UUID]) -> dict[str, common.Case]:
    engine, ctx = inst.rt.engine, inst.owner_ctx
    out: dict[str, common.Case] = {}
    for query in queries():
        def case(filters: ContractFilter = query.filters,
                 name: str = query.name) -> Mapping[str, common.Timing]:
            statements.take()
            with read_only_unit(engine) as session:
                contracts.list_(session, ctx, filters=filters)
            return {f"{name} COUNT": statements.take()}
        out[query.name] = case

    def categories() -> None:
        with read_only_unit(engine) as session:
            contracts.categories(session, ctx)

    terms = search.terms_of("违约金")

    def highlight() -> None:
        with read_only_unit(engine) as session:
            marks = search.highlight(session, page, terms)
        assert len(marks) == len(page)

    out["categories"] = categories
    out["highlight"] = highlight
    return out


EXTRA_LABELS = {"categories": "categories for the filter form (web list page)",
                "highlight": "search.highlight, 20 results of 违约金"}


def totals(inst: Installation) -> dict[str, int]:
    out = {}
    with read_only_unit(inst.rt.engine) as session:
        for query in queries():
            out[query.name] = contracts.list_(session, inst.owner_ctx, filters=query.filters)[1]
    return out


def first_page(inst: Installation) -> list[uuid.UUID]:
    with read_only_unit(inst.rt.engine) as session:
        rows, _ = contracts.list_(session, inst.owner_ctx, filters=ContractFilter(q="违约金"))
        return [c.id for c in rows]


def explain(inst: Installation, statements: Statements) -> None:
    """Print the plan of every case's statements up to its page query."""
    engine = inst.rt.engine
    postgres = engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    for query in queries():
        statements.recording = []
        with read_only_unit(engine) as session:
            contracts.list_(session, inst.owner_ctx, filters=query.filters)
        recorded, statements.recording = statements.recording, None
        print(f"\n### {engine.dialect.name}: {query.name} ({query.label})\n")
        selects = [(s, p) for s, p in recorded if s.lstrip().upper().startswith("SELECT")]
        # Up to the page (the first with ORDER BY): on SQLite the FTS match count that picks
        # the plan, on PostgreSQL the planner settings (``search.planned``), then the COUNT and
        # the page; the eager loads after it are left out. One connection, so that settings
        # made with ``set_config(…, true)`` hold for the statements after them.
        pages = [n for n, (s, _) in enumerate(selects) if "ORDER BY" in s]
        with engine.connect() as conn:
            for statement, parameters in selects[:pages[0] + 1 if pages else 2]:
                print("```")
                print(statement if len(statement) < 2000 else statement[:2000] + " …")
                rows = conn.exec_driver_sql(prefix + statement, parameters).all()
                for row in rows:
                    print("  " + (str(row[0]) if postgres else f"{row[0]} {row[1]} {row[3]}"))
                print("```")


# --- report ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    stats: common.Stats
    p95: float
    count_median: float | None
    matches: int | None


def p95(samples: Sequence[common.Timing]) -> float:
    wall = sorted(t.wall_ns / 1e6 for t in samples)
    return wall[max(0, math.ceil(0.95 * len(wall)) - 1)]


def report(database: str, results: Mapping[str, CaseResult],
           labels: Mapping[str, str]) -> list[common.Target]:
    print(f"\n## {database}\n")
    print("| case | matches | n | p50 ms | p95 ms | p10-p90 ms | CPU p50 ms | COUNT p50 ms | "
          "p95 < 100 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    targets = []
    for name, label in labels.items():
        r = results[name]
        s = r.stats
        target = common.Target(f"{database}: {name} ({label}), p95 ms", r.p95, TARGET_MS)
        targets.append(target)
        count = "" if r.count_median is None else common.ms(r.count_median)
        matches = "" if r.matches is None else f"{r.matches:,}"
        print(f"| {label} | {matches} | {s.n} | {common.ms(s.median)} | {common.ms(r.p95)} | "
              f"{common.ms(s.p10)}-{common.ms(s.p90)} | {common.ms(s.cpu_median)} | {count} | "
              f"{'PASS' if target.met else 'MISS'} |")
    return targets


@dataclass
class Run:
    database: str
    versions: dict[str, str]
    fill: Fill
    analyse_seconds: float
    real_seconds: float
    checks: list[str]
    results: dict[str, CaseResult]


def timed_rounds(to_run: Mapping[str, common.Case],
                 args: argparse.Namespace) -> dict[str, list[common.Timing]]:
    """``common.run_rounds`` one round at a time, stopping early once ``--max-seconds`` have
    passed (after at least ``MIN_ROUNDS``): every round still runs every case once."""
    common.run_rounds(to_run, rounds=0, warmup=args.warmup, progress=False)
    samples: dict[str, list[common.Timing]] = {}
    start = time.perf_counter()
    for number in range(args.rounds):
        for name, values in common.run_rounds(to_run, rounds=1, warmup=0,
                                              progress=False).items():
            samples.setdefault(name, []).extend(values)
        elapsed = time.perf_counter() - start
        print(f"\r  round {number + 1}/{args.rounds} ({elapsed:.0f} s)", end="",
              file=sys.stderr, flush=True)
        if args.max_seconds and elapsed > args.max_seconds and number + 1 >= MIN_ROUNDS:
            print(f"\n  stopped after {number + 1} rounds: --max-seconds {args.max_seconds}",
                  file=sys.stderr, end="")
            break
    print(file=sys.stderr)
    return samples


def run_database(inst: Installation, args: argparse.Namespace) -> Run:
    database = inst.database
    print(f"\n# {database}: filling {args.contracts:,} contracts\n", flush=True)
    corpus, filled = fill(inst, args.contracts)
    start = time.perf_counter()
    real = create_real(inst)
    real_seconds = time.perf_counter() - start
    analyse_seconds = analyse(inst.rt.engine)
    filled = Fill(filled.seconds, filled.contracts, filled.signers, filled.tags,
                  filled.body_chars, sizes(inst.rt.engine))
    info = versions(inst.rt.engine)
    print(f"- versions: {info}")
    print(f"- fill: {filled.contracts:,} contracts, {filled.signers:,} signers, "
          f"{filled.tags:,} tags, {filled.body_chars:,} body characters in "
          f"{filled.seconds:.1f} s; ANALYZE {analyse_seconds:.1f} s; "
          f"{len(real)} contracts through contracts.service.create in {real_seconds:.1f} s")
    for what, size in filled.sizes.items():
        print(f"- size, {what}: {size / 2**20:,.1f} MiB")
    print("\n## Correctness\n")
    lines = checks(inst, corpus, real)
    print("\n".join(lines))
    statements = Statements(inst.rt.engine)
    if args.explain:
        explain(inst, statements)
    matches = totals(inst)
    samples = timed_rounds(cases(inst, statements, first_page(inst)), args)
    results = {}
    for name, values in samples.items():
        if name.endswith(" COUNT"):
            continue
        count = samples.get(f"{name} COUNT")
        results[name] = CaseResult(common.Stats.of(values), p95(values),
                                   common.Stats.of(count).median if count else None,
                                   matches.get(name))
    return Run(database, info, filled, analyse_seconds, real_seconds, lines, results)


class _Server(Protocol):
    """What is used of ``tests.conftest.PostgresServer`` (imported at run time: mypy would
    otherwise check the test suite too)."""

    def fresh_database(self) -> str: ...

    def stop(self) -> None: ...


@contextmanager
def database_url(database: str, given: str | None) -> Iterator[str | None]:
    """``None`` for SQLite (in the installation's directory); a fresh PostgreSQL database from
    a throwaway cluster unless ``given``."""
    if database == "sqlite" or given:
        yield given if database == "postgresql" else None
        return
    sys.path.insert(0, str(REPO))
    server: _Server = importlib.import_module("tests.conftest").PostgresServer()
    try:
        yield server.fresh_database()
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=180,
                        help="stop the timed rounds of a database after this long (at least "
                             f"{MIN_ROUNDS} rounds; 0: no limit)")
    parser.add_argument("--database-url",
                        help="an empty, migrated PostgreSQL database (default: a throwaway "
                             "cluster)")
    parser.add_argument("--explain", action="store_true",
                        help="print the query plans of every case")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.contracts < 100:
        parser.error("--contracts must be at least 100")
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    info = common.print_header("bench/search.py", {
        "contracts": args.contracts, "databases": ", ".join(databases), "rounds": args.rounds,
        "warm-up rounds": args.warmup, "max seconds of timed rounds per database":
        args.max_seconds or "no limit", "target": f"p95 < {TARGET_MS:g} ms per case"})
    labels = {q.name: q.label for q in queries()} | EXTRA_LABELS
    runs: list[Run] = []
    targets: list[common.Target] = []
    for database in databases:
        with database_url(database, args.database_url) as url, \
                tempfile.TemporaryDirectory(prefix="econtract-bench-") as tmp, \
                installation(Path(tmp), url) as inst:
            runs.append(run_database(inst, args))
        targets += report(runs[-1].database, runs[-1].results, labels)
    print("\n## Targets\n")
    for run in runs:
        for line in run.checks:
            print(f"{line} ({run.database})")
    for target in targets:
        print(target.line())
    common.write_json(args.json, machine=info, settings=vars(args), runs=[{
        "database": r.database, "versions": r.versions, "fill": vars(r.fill),
        "analyse_seconds": r.analyse_seconds, "checks": r.checks,
        "cases": {name: {"stats": c.stats, "p95": c.p95, "count_median": c.count_median,
                         "matches": c.matches} for name, c in r.results.items()}}
        for r in runs], targets=targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
