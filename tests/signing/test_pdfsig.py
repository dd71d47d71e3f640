"""A second opinion: poppler's ``pdfsig`` (NSS) on the sealed three-signer contract.

pdfsig 22.12 checks each CAdES signature and its certificate against the NSS database holding the
test root. It cannot verify RFC 3161 document timestamps: for ours it prints
``Signature Type: unknown``, ``Signature Validation: Signature has not yet been verified.`` and,
on stderr, ``Unimplemented Feature … Unable to validate this type of signature`` — pyHanko
validates that timestamp in test_seal.py. It does not diff revisions either: earlier signatures
are reported as ``Not total document signed``, which is expected for every signature before the
last one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tests.signing.conftest import Flow
from tests.signing.testpki import SIGNERS, TestPki


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, (f"`{name}` is missing: install poppler-utils and libnss3-tools "
                  "(`make system-deps` does)")
    return path


def _nss_db(pki: TestPki, directory: Path) -> str:
    certutil = _tool("certutil")
    directory.mkdir()
    db = f"sql:{directory}"
    subprocess.run([certutil, "-N", "--empty-password", "-d", db], check=True, timeout=60)
    root = directory / "root.pem"
    root.write_bytes(pki.root.cert.public_bytes(serialization.Encoding.PEM))
    subprocess.run([certutil, "-A", "-n", "econtract test root", "-t", "CT,C,C", "-d", db,
                    "-i", str(root)], check=True, timeout=60)
    return db


def _blocks(report: str) -> dict[str, str]:
    """pdfsig's report split per signature, keyed by field name."""
    blocks = re.split(r"^Signature #\d+:$", report, flags=re.M)[1:]
    return {re.search(r"Signature Field Name: (.+)", b).group(1).strip(): b  # type: ignore[union-attr]
            for b in blocks}


def test_pdfsig_trusts_every_signature(flow: Flow, pki: TestPki, tmp_path: Path) -> None:
    pdfsig = _tool("pdfsig")
    db = _nss_db(pki, tmp_path / "nss")
    document = tmp_path / "sealed.pdf"
    document.write_bytes(flow.sealed)
    done = subprocess.run([pdfsig, "-nssdir", db, str(document)], capture_output=True,
                          text=True, timeout=120, check=False)
    blocks = _blocks(done.stdout)
    expected = ["signer-1", "signer-2", "signer-3", "econtract-certification"]
    assert [f for f in blocks if not f.startswith("econtract-archive")] == expected, done.stdout
    for field in expected:
        block = blocks[field]
        assert "Signature Validation: Signature is Valid." in block, block
        assert "Certificate Validation: Certificate is Trusted." in block, block
        assert "Signature Type: ETSI.CAdES.detached" in block, block
    for field, (name, _) in zip(expected, SIGNERS, strict=False):
        assert f"Signer Certificate Common Name: {name}" in blocks[field]
    archive = blocks["econtract-archive-1"]
    assert "Signature Type: unknown" in archive and "Total document signed" in archive
