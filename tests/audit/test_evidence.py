"""The evidence package (证据包): built from a real completed contract on both databases, checked
offline by ``econtract verify-evidence``; altering any single file inside fails, naming it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from econtract.audit import evidence
from econtract.audit.evidence_check import verify_package
from econtract.cli import main
from econtract.errors import InvalidTransition
from econtract.runtime import Runtime
from tests.factories import owner, user_ctx
from tests.parties.test_sign import sent_contract, sign_as

SIGNERS = [{"name": "张三", "email": "zhang@example.com", "order": 1},
           {"name": "Bob Lee", "email": "bob@example.com", "order": 2}]


def _completed_package(rt: Runtime) -> bytes:
    contract = sent_contract(rt, SIGNERS)
    with rt.uow() as session, pytest.raises(InvalidTransition) as caught:
        evidence.build(session, user_ctx(owner(rt)), blobs=rt.blobs,
                       engine=rt.signing_engine(), contract_id=contract.id)
    assert caught.value.code == "evidence_not_ready"
    for signer in SIGNERS:
        assert sign_as(rt, contract.id, str(signer["email"])).error is None
    for _ in range(5):  # the seal job, then whatever follows completion
        if not rt.worker().run_once():
            break
    with rt.uow() as session:
        package = evidence.build(session, user_ctx(owner(rt)), blobs=rt.blobs,
                                 engine=rt.signing_engine(), contract_id=contract.id)
    return package.data


def _rewrite(data: bytes, name: str, change: bytes | None) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == name:
                if change is None:
                    continue
                content = change
            target.writestr(info.filename, content)
    return out.getvalue()


def _flip(content: bytes, at: int) -> bytes:
    return content[:at] + bytes([content[at] ^ 0x01]) + content[at + 1:]


def test_package_is_intact_and_every_alteration_is_named(rt: Runtime, tmp_path: Path) -> None:
    data = _completed_package(rt)
    report = verify_package(data)
    assert report.ok, report.to_dict()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert {"contract.pdf", "audit/events.jsonl", "manifest.json", "manifest.sig",
            "certificates/root-ca.pem", "revocation/signer-ca.crl",
            "verification-report.json"} <= set(names)
    assert sum(n.startswith("certificates/signer-") and n != "certificates/signer-ca.pem"
               for n in names) == 2

    archive = zipfile.ZipFile(io.BytesIO(data))
    for name in names:
        content = archive.read(name)
        altered = _rewrite(data, name, _flip(content, len(content) // 2))
        failed = [c for c in verify_package(altered).checks if not c.ok]
        assert failed, f"altering {name} went unnoticed"
        assert name in failed[0].detail or name in (evidence.MANIFEST, evidence.SIGNATURE), \
            (name, failed[0])
    missing = [c for c in verify_package(_rewrite(data, "contract.pdf", None)).checks
               if not c.ok]
    assert "contract.pdf" in missing[0].detail
    smuggled = io.BytesIO(data)
    with zipfile.ZipFile(smuggled, "a") as target:
        target.writestr("notes.txt", "added later")
    assert "notes.txt" in next(c for c in verify_package(smuggled.getvalue()).checks
                               if not c.ok).detail

    # The CLI: exit 0 and INTACT; exit 1 naming the altered event file.
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    good.write_bytes(data)
    events = archive.read("audit/events.jsonl").decode().splitlines()
    first = json.loads(events[0])
    first["ip"] = "192.0.2.99"
    bad.write_bytes(_rewrite(data, "audit/events.jsonl",
                             "\n".join([json.dumps(first), *events[1:]]).encode() + b"\n"))
    runner = CliRunner()
    ok = runner.invoke(main, ["verify-evidence", str(good)])
    assert ok.exit_code == 0 and "evidence: INTACT" in ok.output, ok.output
    broken = runner.invoke(main, ["verify-evidence", str(bad), "--json"])
    assert broken.exit_code == 1
    result = json.loads(broken.output)
    assert not result["ok"] and "audit/events.jsonl" in result["checks"][-1]["detail"]
    assert runner.invoke(main, ["verify-evidence", str(tmp_path / "none.zip")]).exit_code == 2
