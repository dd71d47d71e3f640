"""The platform's sign step against bare pyHanko, in one run, on the same documents.

    .venv/bin/python bench/sign.py [--rounds 15] [--warmup 2] [--pages 1,30]
                                   [--database-url postgresql+psycopg://...] [--json OUT]

Set-up (not timed): a throwaway installation in a temporary directory (SQLite there, or the
empty PostgreSQL database given), with its own platform PKI; one contract per document size,
created from a fixture PDF and sent (prepared, certified by the platform seal); its first signer
("张伟", 2 signers in all) has a key already (set up by an earlier, committed signature).

Cases, round-robin, each on the same certified document and the same signature field:

a. ``platform``: ``parties.sign`` at the service level in a unit of work: row lock, PIN unlock of
   the signer's key (Argon2id + AES-GCM + key load), blob decrypt, PAdES B-T signature with the
   platform's visible appearance and a token from the built-in TSA (in-process), self-check,
   blob encrypt + write, version row, audit events, state transition, next signer invited. The
   unit is rolled back instead of committed, so every round signs the same document again; the
   commit is measured on real, committed signings and added. ``derive_kek`` (Argon2id) and
   ``sending.self_check`` are wrapped in this process only; their time inside each call is
   reported on its own and subtracted from the headline figure.
b. ``bare``: pyHanko tuned — the same key parsed once (a ``SimpleSigner`` whose raw signature uses
   the cached ``cryptography`` key), the same certificates, a fixed ``bytes_reserved`` equal to the
   platform's reserve, a token from the same TSA object, pyHanko's stock ``TextStampStyle``
   appearance in the same field, same /Reason and /Location.
c. ``documented``: pyHanko's documented path — ``SimpleSigner.load`` from PEM files on every
   signature, automatic size estimate (dry run), otherwise as (b).

Also timed: one Argon2id derivation with ``PIN_PARAMS``, and one built-in TSA token three ways
(``respond`` alone; through pyHanko's client; pyHanko's ``DummyTimeStamper``, which re-parses its
key for every token). Targets: a/b <= 1.5, c/a >= 4, Argon2id 50-250 ms. Exit status 0 always.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import secrets
import sys
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import _common as common
from _install import BASE_URL, PEOPLE, Installation, installation
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from econtract.contracts import sending
from econtract.pki import PIN_PARAMS, PrivateKey, keystore
from econtract.pki.tsa import TimeStampAuthority

SIGNER, OTHER = PEOPLE[0], PEOPLE[1]
REASON = "签署 / Signed"


# --- bare pyHanko ------------------------------------------------------------------------------


class InProcessTsa(TimeStamper):
    """pyHanko's client side of the platform's built-in TSA object, without our wrapper."""

    def __init__(self, tsa: TimeStampAuthority) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]
        self._tsa = tsa

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        der = self._tsa.respond(req.dump(), now=datetime.now(UTC),
                                serial=secrets.randbits(63) + 1)
        return tsp.TimeStampResp.load(der)


class CachedKeySigner(signers.SimpleSigner):
    """The tuning of performance.md: the private key is parsed once, not on every signature."""

    def __init__(self, key: PrivateKey, cert: x509.Certificate,
                 chain: tuple[x509.Certificate, ...]) -> None:
        super().__init__(signing_cert=_asn1(cert), signing_key=_pkcs8(key),
                         cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                             [_asn1(c) for c in chain]))
        self._key = key

    async def async_sign_raw(self, data: bytes, digest_algorithm: str,
                             dry_run: bool = False) -> bytes:
        algorithm = get_pyca_cryptography_hash(digest_algorithm)
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), algorithm)
        return self._key.sign(data, ec.ECDSA(algorithm))


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _pkcs8(key: PrivateKey) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def pyhanko_sign(pdf: bytes, signer: signers.Signer, field: str, tsa: TimeStamper,
                 reserve: int | None) -> bytes:
    """PAdES B-T in the existing field ``field``, visible with pyHanko's stock stamp."""
    meta = signers.PdfSignatureMetadata(field_name=field, md_algorithm="sha256",
                                        subfilter=fields.SigSeedSubFilter.PADES,
                                        reason=REASON, location=BASE_URL)
    pdf_signer = signers.PdfSigner(meta, signer, timestamper=tsa, stamp_style=TextStampStyle())
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=True)
    out = pdf_signer.sign_pdf(writer, existing_fields_only=True, bytes_reserved=reserve)
    return bytes(out.getvalue())


@dataclass(frozen=True)
class PemFiles:
    key: str
    cert: str
    chain: tuple[str, ...]

    @classmethod
    def write(cls, directory: Path, key: PrivateKey, cert: x509.Certificate,
              chain: tuple[x509.Certificate, ...]) -> PemFiles:
        pem = serialization.Encoding.PEM
        (directory / "key.pem").write_bytes(key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        paths = []
        for name, c in (("cert", cert), *((f"ca{i}", c) for i, c in enumerate(chain))):
            (directory / f"{name}.pem").write_bytes(c.public_bytes(pem))
            paths.append(str(directory / f"{name}.pem"))
        return cls(str(directory / "key.pem"), paths[0], tuple(paths[1:]))

    def load(self) -> signers.SimpleSigner:
        """pyHanko's documented way to get a signer from files."""
        signer = signers.SimpleSigner.load(  # type: ignore[no-untyped-call]
            self.key, self.cert, ca_chain_files=self.chain)
        assert isinstance(signer, signers.SimpleSigner)
        return signer


def contents_reserve(pdf: bytes) -> int:
    """The /Contents size (hex characters) of the newest signature: the platform's reserve."""
    newest = PdfFileReader(BytesIO(pdf)).embedded_signatures[-1]
    return 2 * len(newest.sig_object.raw_get("/Contents").original_bytes)


# --- the cases ---------------------------------------------------------------------------------


@dataclass
class Document:
    """One certified contract: the platform signs it (rolled back) and pyHanko signs its bytes."""

    label: str
    contract_id: uuid.UUID
    pdf: bytes
    field: str


class Bench:
    def __init__(self, inst: Installation, workdir: Path, reserve: int) -> None:
        self.inst, self.reserve = inst, reserve
        self.steps = common.StepTimer()
        self.steps.wrap(keystore, "derive_kek", "argon2id")
        self.steps.wrap(sending, "self_check", "self_check")
        key, cert, chain = inst.signing_material(SIGNER)
        self.tuned = CachedKeySigner(key, cert, chain)
        self.pem = PemFiles.write(workdir, key, cert, chain)
        self.tsa_object = inst.engine.authority.tsa_service
        self.tsa = InProcessTsa(self.tsa_object)
        self.commits: list[common.Timing] = []

    def platform(self, doc: Document) -> Mapping[str, common.Timing]:
        self.steps.take()
        result = self.inst.sign(doc.contract_id, SIGNER, commit=False)
        inside = self.steps.take()
        return {f"{doc.label} platform service": result.service,
                f"{doc.label} platform argon2id": inside.get("argon2id", common.ZERO),
                f"{doc.label} platform self-check": inside.get("self_check", common.ZERO)}

    def commit_for_real(self, doc: Document) -> None:
        self.commits.append(self.inst.sign(doc.contract_id, SIGNER, commit=True).end)

    def cases(self, docs: list[Document]) -> dict[str, common.Case]:
        cases: dict[str, common.Case] = {}
        for doc in docs:
            cases.update(self.document_cases(doc))
        cases.update(self.reference_cases())
        return cases

    def document_cases(self, doc: Document) -> dict[str, common.Case]:
        def platform() -> Mapping[str, common.Timing]:
            return self.platform(doc)

        def bare() -> None:
            pyhanko_sign(doc.pdf, self.tuned, doc.field, self.tsa, self.reserve)

        def documented() -> None:
            pyhanko_sign(doc.pdf, self.pem.load(), doc.field, self.tsa, None)

        return {f"{doc.label} platform": platform, f"{doc.label} bare": bare,
                f"{doc.label} documented": documented}

    def reference_cases(self) -> dict[str, common.Case]:
        salt, digest = secrets.token_bytes(16), hashlib.sha256(b"bench").digest()
        request = tsp.TimeStampReq({
            "version": "v1", "cert_req": True, "nonce": secrets.randbits(63),
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                                "hashed_message": digest}}).dump()
        authority = self.inst.engine.authority
        dummy = DummyTimeStamper(tsa_cert=_asn1(authority.tsa.certificate),
                                 tsa_key=_pkcs8(authority.tsa.private_key),
                                 certs_to_embed=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                                     [_asn1(authority.root.certificate)]))
        return {
            "argon2id": common.quiet(lambda: keystore.derive_kek(SIGNER.pin, salt, PIN_PARAMS)),
            "tsa respond": common.quiet(lambda: self.tsa_object.respond(
                request, now=datetime.now(UTC), serial=secrets.randbits(63) + 1)),
            "tsa via pyhanko client": common.quiet(lambda: asyncio.run(
                self.tsa.async_timestamp(digest, "sha256"))),
            "tsa pyhanko dummy": common.quiet(lambda: asyncio.run(
                dummy.async_timestamp(digest, "sha256"))),
        }


# --- set-up, run, report -----------------------------------------------------------------------


def set_up(inst: Installation, pages: list[int]) -> tuple[int, list[Document]]:
    """The signer's key (a first, committed signature), then one sent contract per size.

    :return: the platform's /Contents reserve (from that first signature), the documents.
    """
    first = inst.send_contract(common.contract_pdf(1), [SIGNER], "Key set-up")
    inst.verify_identity(first, SIGNER)
    inst.sign(first, SIGNER, commit=True)
    reserve = contents_reserve(inst.current_pdf(first))
    docs = []
    for count in pages:
        contract_id = inst.send_contract(common.contract_pdf(count), [SIGNER, OTHER],
                                         f"Benchmark contract, {count} pages")
        inst.verify_identity(contract_id, SIGNER)
        docs.append(Document(f"{count}p", contract_id, inst.current_pdf(contract_id),
                             inst.field_of(contract_id, SIGNER)))
    return reserve, docs


def headline(samples: Mapping[str, list[common.Timing]], doc: Document,
             commit_ms: float) -> common.Stats:
    """The platform's sign step: service call minus Argon2id and self-check, plus commit."""
    name = f"{doc.label} platform"
    net = common.difference(samples[f"{name} service"], samples[f"{name} argon2id"],
                            samples[f"{name} self-check"])
    return common.Stats.of(net).plus(commit_ms)


DOCUMENT_ROWS = {
    "platform step": "**a. platform sign step** (excl. Argon2id, self-check; incl. commit)",
    "platform service": "platform service call, all included (no commit)",
    "platform argon2id": "  of which Argon2id (derive_kek)",
    "platform self-check": "  of which self-check (verify_pdf + CRLs)",
    "bare": "**b. bare pyHanko, tuned** (cached key, fixed reserve)",
    "documented": "**c. pyHanko documented** (SimpleSigner.load, estimate)",
}
REFERENCE_ROWS = {
    "commit": "COMMIT of a signing unit of work (real signings)",
    "argon2id": f"Argon2id derive_kek, PIN_PARAMS {PIN_PARAMS}",
    "tsa respond": "built-in TSA: respond() alone, one token",
    "tsa via pyhanko client": "built-in TSA through pyHanko's client (request, checks)",
    "tsa pyhanko dummy": "pyHanko DummyTimeStamper, same key (re-parsed per token)",
}


def report_document(doc: Document, stats: dict[str, common.Stats],
                    samples: Mapping[str, list[common.Timing]]) -> list[common.Target]:
    a = stats[f"{doc.label} platform step"] = headline(samples, doc, stats["commit"].median)
    b, c = stats[f"{doc.label} bare"], stats[f"{doc.label} documented"]
    print(f"\n## {doc.label}: {len(doc.pdf):,} bytes certified, field {doc.field}\n")
    print(common.stats_table(stats, {f"{doc.label} {k}": v for k, v in DOCUMENT_ROWS.items()}))
    return [common.ratio_target(f"{doc.label} a/b (platform / tuned bare)", a, b, 1.5),
            common.ratio_target(f"{doc.label} c/a (documented / platform)", c, a, 4,
                                at_most=False)]


def report_references(stats: dict[str, common.Stats]) -> list[common.Target]:
    print("\n## Reference steps\n")
    print(common.stats_table(stats, REFERENCE_ROWS))
    argon = stats["argon2id"]
    label = "Argon2id derivation, median ms"
    return [common.Target(label, argon.median, 250, cpu_value=argon.cpu_median),
            common.Target(label, argon.median, 50, at_most=False, cpu_value=argon.cpu_median)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--pages", default="1,30", help="document sizes, comma-separated")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default SQLite)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    pages = [int(p) for p in args.pages.split(",")]
    info = common.print_header("bench/sign.py", {
        "rounds": args.rounds, "warm-up rounds": args.warmup, "documents": args.pages})
    with tempfile.TemporaryDirectory(prefix="econtract-bench-") as tmp, \
            installation(Path(tmp), args.database_url) as inst:
        print(f"- database: {inst.database}\n", flush=True)
        reserve, docs = set_up(inst, pages)
        bench = Bench(inst, Path(tmp), reserve)
        try:
            samples = common.run_rounds(bench.cases(docs), rounds=args.rounds,
                                        warmup=args.warmup)
            for doc in docs:
                bench.commit_for_real(doc)
        finally:
            bench.steps.restore()
    stats = common.summarise(samples)
    stats["commit"] = common.Stats.of(bench.commits)
    targets = [t for doc in docs for t in report_document(doc, stats, samples)]
    targets += report_references(stats)
    return common.finish(args.json, machine=info, stats=stats, targets=targets)


if __name__ == "__main__":
    sys.exit(main())
