"""Bulk send (批量发送), issue 5 acceptance 3, on both databases: a 200-row CSV with 3 bad rows
reports exactly those 3 (right columns) and sends nothing; an interrupted run resumed by the real
worker sends each contract exactly once; the REST API (report, start, progress, other
organisations); GB18030 files from Excel; the web pages.

The interruption is simulated in-process: ``sending.send`` is wrapped to raise a
``BaseException`` (like a kill, it is not caught by the worker's ``except Exception``) on the
third call, i.e. after items 1 and 2 have committed and in the middle of item 3. The worker's
run stops there with its job still ``running`` under a lease; a second worker whose clock is past
the lease claims the job again and finishes the run.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from econtract.app import create_app
from econtract.audit.models import AuditEvent
from econtract.context import utcnow
from econtract.contracts import bulk, sending
from econtract.contracts.models import BulkItem, BulkRun, Contract
from econtract.errors import Conflict, ValidationFailed
from econtract.jobs import Worker
from econtract.jobs.models import OutboxJob
from econtract.runtime import Runtime
from econtract.templates import service as templates
from econtract.templates.schemas import TemplateCreate
from tests.conftest import FakeClock
from tests.contracts.test_api import api_key
from tests.contracts.test_completion import drain
from tests.factories import add_org, owner, user_ctx
from tests.web.test_pages import csrf, login

BODY = ("<h1>{{ title }}</h1><p>{{ party_b.name }}：{{ amount|money }}（{{ amount|money_cn }}），"
        "{{ start_date|date_cn }}起。</p>")
VARIABLES = [{"name": "party_b", "type": "party", "label": "乙方"},
             {"name": "amount", "type": "money", "label": "金额"},
             {"name": "start_date", "type": "date", "label": "开始日期"}]
HEADER = ["title", "signer1_name", "signer1_email", "signer2_name", "signer2_email", "tags",
          "party_b.name", "party_b.id_number", "amount", "start_date"]


def tiny_template(rt: Runtime) -> uuid.UUID:
    with rt.uow() as session:
        template = templates.create(session, user_ctx(owner(rt)), data=TemplateCreate(
            name="Bulk tiny 批量", body=BODY, variables=VARIABLES))  # type: ignore[arg-type]
        return template.id


def row(i: int) -> list[str]:
    return [f"服务合同 {i:03d}", f"签署人{i}", f"a{i}@example.com", f"Bob {i}",
            f"b{i}@example.com", "bulk;2027", f"乙方公司{i}", f"9131{i:06d}", f"{1000 + i}.50",
            "2027-03-01"]


def make_csv(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def prepare(rt: Runtime, data: bytes, template_id: uuid.UUID) -> BulkRun:
    with rt.uow() as session:
        return bulk.prepare(session, user_ctx(owner(rt)), template_id=template_id,
                            filename="batch.csv", data=data)


def items_of(rt: Runtime, run_id: uuid.UUID) -> list[BulkItem]:
    with rt.uow() as session:
        return list(session.scalars(select(BulkItem).where(BulkItem.run_id == run_id)
                                    .order_by(BulkItem.row_number)))


def count_contracts(rt: Runtime) -> int:
    with rt.uow() as session:
        return session.scalar(select(func.count()).select_from(Contract)) or 0


def test_200_rows_with_3_bad_ones_report_exactly_those(rt: Runtime) -> None:
    template_id = tiny_template(rt)
    rows = [row(i) for i in range(200)]
    rows[9][HEADER.index("amount")] = ""  # file row 11: a required variable missing
    rows[99][HEADER.index("signer1_email")] = "not-an-address"  # row 101: bad e-mail
    rows[179][HEADER.index("amount")] = "12abc"  # row 181: ill-typed money and date
    rows[179][HEADER.index("start_date")] = "2027-13-45"
    run = prepare(rt, make_csv(rows), template_id)

    assert run.status == "invalid" and run.total == 200
    bad = {i.row_number: i.errors for i in items_of(rt, run.id) if i.status == "invalid"}
    assert sorted(bad) == [11, 101, 181]
    assert bad[11] == {"amount": "required"}
    assert list(bad[101] or {}) == ["signer1_email"]
    assert set(bad[181] or {}) == {"amount", "start_date"}
    assert len([i for i in items_of(rt, run.id) if i.status == "pending"]) == 197
    with rt.uow() as session, pytest.raises(Conflict) as refused:
        bulk.start(session, user_ctx(owner(rt)), run_id=run.id)
    assert refused.value.code == "bulk_invalid"
    assert count_contracts(rt) == 0
    with rt.uow() as session:
        jobs = session.scalar(select(func.count()).select_from(OutboxJob)
                              .where(OutboxJob.kind == bulk.BULK_JOB))
        assert jobs == 0
        kinds = list(session.scalars(select(AuditEvent.kind).where(
            AuditEvent.kind.like("bulk.%"))))
        assert kinds == ["bulk.prepared"]


def test_file_level_problems_are_refused_before_any_row(rt: Runtime) -> None:
    template_id = tiny_template(rt)
    with pytest.raises(ValidationFailed) as unknown:
        prepare(rt, make_csv([[*row(1), "x"]], [*HEADER, "colour"]), template_id)
    assert unknown.value.code == "bulk_csv_columns"
    assert unknown.value.details["problems"] == {"colour": "not a column of this template"}
    without_amount = [h for h in HEADER if h != "amount"]
    with pytest.raises(ValidationFailed) as missing:
        prepare(rt, make_csv([], without_amount) + b"t,n,a@b.cn,,,,P,,2027-01-01\r\n",
                template_id)
    assert missing.value.details["problems"] == {"amount": "missing column"}
    with pytest.raises(ValidationFailed) as empty:
        prepare(rt, make_csv([]), template_id)
    assert empty.value.code == "bulk_csv_empty"


def test_gb18030_csv_from_excel_with_chinese_names(rt: Runtime) -> None:
    template_id = tiny_template(rt)
    text = make_csv([row(1), row(2)]).decode()
    data = text.encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    run = prepare(rt, data, template_id)
    assert run.status == "ready"
    first = items_of(rt, run.id)[0]
    assert first.row_number == 2 and first.status == "pending"
    assert first.data["signer1_name"] == "签署人1"
    assert first.data["party_b.name"] == "乙方公司1"
    # UTF-8 with a byte-order mark (Excel's "CSV UTF-8") reads the same.
    assert prepare(rt, b"\xef\xbb\xbf" + text.encode(), template_id).status == "ready"


class Killed(BaseException):
    """Stands for the worker process dying: not an ``Exception``, so nothing handles it."""


def test_interrupted_run_resumes_and_sends_each_contract_once(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    template_id = tiny_template(rt)
    run = prepare(rt, make_csv([row(i) for i in range(6)]), template_id)
    assert run.status == "ready"
    with rt.uow() as session:
        started = bulk.start(session, user_ctx(owner(rt)), run_id=run.id)
        assert started.status == "sending"
    with rt.uow() as session:  # starting again changes nothing
        bulk.start(session, user_ctx(owner(rt)), run_id=run.id)

    real_send = sending.send
    calls = Counter[str]()

    def dying_send(*args: Any, **kwargs: Any) -> Contract:
        calls["send"] += 1
        if calls["send"] == 3:
            raise Killed
        return real_send(*args, **kwargs)

    monkeypatch.setattr(sending, "send", dying_send)
    with pytest.raises(Killed):
        rt.worker().run_once()
    monkeypatch.setattr(sending, "send", real_send)

    statuses = [i.status for i in items_of(rt, run.id)]
    assert statuses == ["sent", "sent", "pending", "pending", "pending", "pending"]
    assert count_contracts(rt) == 2  # item 3's contract rolled back with its transaction

    # The job is still "running" under the dead worker's lease; a worker after the lease
    # claims it again and runs the rest (and the e-mails) until idle.
    later = Worker(rt.session_factory, rt.registry, name="resumer",
                   clock=lambda: utcnow() + timedelta(seconds=600))
    for _ in range(50):
        if later.run_once() == 0:
            break

    done = items_of(rt, run.id)
    assert [i.status for i in done] == ["sent"] * 6
    contract_ids = [i.contract_id for i in done]
    assert None not in contract_ids and len(set(contract_ids)) == 6
    with rt.uow() as session:
        contracts = list(session.scalars(select(Contract)))
        assert len(contracts) == 6
        assert {c.status for c in contracts} == {"sent"}
        assert {c.id for c in contracts} == set(contract_ids)
        assert session.get_one(BulkRun, run.id).status == "done"
        emails = session.scalars(select(OutboxJob).where(OutboxJob.kind == "email.send"))
        invited = Counter(to for job in emails for to in job.payload["to"]
                          if "Please sign" in job.payload["subject"])
        expected = {f"{p}{i}@example.com" for p in ("a", "b") for i in range(6)}
        assert set(invited) == expected
        assert set(invited.values()) == {1}
        finished = list(session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "bulk.finished")))
        assert len(finished) == 1 and finished[0].data["sent"] == 6
        assert bulk.progress(session, session.get_one(BulkRun, run.id)) == {
            "pending": 0, "sent": 6, "failed": 0, "invalid": 0, "total": 6}


def test_a_row_refused_at_send_time_fails_alone(rt: Runtime,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    template_id = tiny_template(rt)
    run = prepare(rt, make_csv([row(1), row(2)]), template_id)
    with rt.uow() as session:
        bulk.start(session, user_ctx(owner(rt)), run_id=run.id)
    real_send = sending.send

    def refuse_first(*args: Any, **kwargs: Any) -> Contract:
        if not refuse_first.__dict__.get("done"):
            refuse_first.__dict__["done"] = True
            raise ValidationFailed("render failed", code="template_render_failed")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(sending, "send", refuse_first)
    drain(rt)
    first, second = items_of(rt, run.id)
    assert first.status == "failed" and first.contract_id is None
    assert first.errors == {"send": {"code": "template_render_failed",
                                     "message": "render failed"}}
    assert second.status == "sent" and second.contract_id is not None
    assert count_contracts(rt) == 1


# --- REST API ------------------------------------------------------------------------------

@pytest.fixture
def client(rt: Runtime, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(rt, clock=clock)) as test_client:
        yield test_client


def upload(client: TestClient, headers: dict[str, str], template_id: uuid.UUID,
           data: bytes) -> Any:
    return client.post("/api/v1/bulk", headers=headers, data={"template_id": str(template_id)},
                       files={"file": ("batch.csv", data, "text/csv")})


def test_api_report_start_progress_and_isolation(rt: Runtime, client: TestClient) -> None:
    template_id = tiny_template(rt)
    headers = api_key(rt, owner(rt))
    rows = [row(1), row(2), row(3)]
    rows[1][HEADER.index("start_date")] = "soon"
    refused = upload(client, headers, template_id, make_csv(rows))
    assert refused.status_code == 201, refused.text
    report = refused.json()
    assert report["status"] == "invalid" and report["invalid"] == 1
    assert [(r["row_number"], list(r["errors"])) for r in report["invalid_rows"]] == \
        [(3, ["start_date"])]
    start = client.post(f"/api/v1/bulk/{report['id']}/start", headers=headers)
    assert start.status_code == 409 and start.json()["code"] == "bulk_invalid"

    good = upload(client, headers, template_id, make_csv([row(1), row(2)])).json()
    assert good["status"] == "ready" and good["pending"] == 2 and good["invalid_rows"] == []
    first = client.post(f"/api/v1/bulk/{good['id']}/start", headers=headers)
    assert first.status_code == 200 and first.json()["status"] == "sending"
    again = client.post(f"/api/v1/bulk/{good['id']}/start", headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "sending"
    drain(rt)
    progress = client.get(f"/api/v1/bulk/{good['id']}", headers=headers).json()
    assert progress["status"] == "done"
    assert (progress["total"], progress["sent"], progress["pending"]) == (2, 2, 0)
    assert all(i["contract_id"] for i in progress["items"])
    contract = client.get(f"/api/v1/contracts/{progress['items'][0]['contract_id']}",
                          headers=headers).json()
    assert contract["status"] == "sent" and contract["template_id"] == str(template_id)

    other = api_key(rt, add_org(rt, name="Other Co", email="boss@other.test"))
    assert client.get(f"/api/v1/bulk/{good['id']}", headers=other).status_code == 404
    assert client.post(f"/api/v1/bulk/{good['id']}/start", headers=other).status_code == 404
    assert upload(client, other, template_id, make_csv([row(1)])).status_code == 404


# --- web pages -----------------------------------------------------------------------------

def test_pages_sample_upload_report_and_start(rt: Runtime, client: TestClient) -> None:
    template_id = tiny_template(rt)
    assert login(client).status_code == 303
    page = client.get(f"/bulk/new?template_id={template_id}")
    assert page.status_code == 200 and "bulk/sample.csv" in page.text
    sample = client.get(f"/bulk/sample.csv?template_id={template_id}")
    assert sample.status_code == 200 and sample.content.startswith(b"\xef\xbb\xbf")
    # The sample is itself a valid file for its template.
    token = csrf(page.text)
    posted = client.post("/bulk", data={"template_id": str(template_id), "csrf_token": token},
                         files={"file": ("sample.csv", sample.content, "text/csv")},
                         follow_redirects=False)
    assert posted.status_code == 303, posted.text
    report = client.get(posted.headers["location"])
    assert "Send 1 contracts" in report.text

    rows = [row(1), row(2)]
    rows[0][HEADER.index("signer1_email")] = "nope"
    bad = client.post("/bulk", data={"template_id": str(template_id), "csrf_token": token},
                      files={"file": ("b.csv", make_csv(rows), "text/csv")})
    assert bad.status_code == 200 and "signer1_email" in bad.text and "<td>2</td>" in bad.text

    run_path = posted.headers["location"]
    started = client.post(f"{run_path}/start", data={"csrf_token": token},
                          follow_redirects=False)
    assert started.status_code == 303
    progress = client.get(run_path)
    assert 'id="bulk-progress"' in progress.text and "bulk.js" in progress.text


# --- rows without a database ---------------------------------------------------------------

def test_row_checks_dates_deadlines_and_stray_cells() -> None:
    from econtract.templates.variables import parse_variables

    text = make_csv([row(1), row(2), row(3)], [*HEADER, "effective_date", "expiry_date",
                                               "sign_deadline", ""]).decode()
    lines = text.split("\r\n")
    lines[1] += ",2027-02-01,2027-12-31,2027-01-31"  # fine; deadline = end of day in China
    lines[2] += ",2027-02-01,2027-01-01,"  # expiry before effective
    lines[3] += ",,,2027-01-31T18:00:00,stray"  # no zone, and a cell under no column
    header, rows = bulk.read_rows("\r\n".join(lines))
    assert header == [*HEADER, "effective_date", "expiry_date", "sign_deadline"]
    columns = bulk.check_header(header, parse_variables(VARIABLES))
    now = utcnow()
    ok, errors = bulk.check_row(rows[0][1], columns, now)
    assert errors == {} and ok is not None
    assert ok.contract_in.sign_deadline is not None
    assert ok.contract_in.sign_deadline.isoformat() == "2027-01-31T23:59:59+08:00"
    assert ok.contract_in.tags == ["bulk", "2027"]
    assert [s.order for s in ok.contract_in.signers] == [1, 1]
    assert bulk.check_row(rows[1][1], columns, now)[1] == {
        "expiry_date": "expiry_date must not be before effective_date"}
    assert set(bulk.check_row(rows[2][1], columns, now)[1]) == {"row", "sign_deadline"}
