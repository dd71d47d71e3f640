"""The platform's verifier against bare pyHanko validation, in one run, on the same files.

    .venv/bin/python bench/verify.py [--rounds 15] [--warmup 2] [--isolated-rounds 5]
                                     [--database-url postgresql+psycopg://...] [--json OUT]

Set-up (not timed): a throwaway installation (as in ``bench/sign.py``) produces two real files
through the service layer: a 1-page contract signed by 1 signer (the platform's certification
plus one PAdES B-T approval signature; not sealed yet), and a 1-page contract signed by 3 signers
and sealed by the seal job (certification, 3 approvals, DSS with certificates and CRLs, document
timestamp: PAdES B-LTA). Both start from the same fixture PDF.

Cases, round-robin, on the same bytes, each opening the PDF from bytes:

a. ``platform``: ``verify_pdf(data, trust)`` with the trust the platform's self-check uses (its
   root as the only anchor, both current CRLs): pyHanko's validation of every signature plus our
   own rules (strict reading of every revision, byte-range shape, algorithm policy, DSS, point of
   existence from document timestamps, our change list, DocMDP and field locks).
b. ``bare``: pyHanko alone: ``validate_pdf_signature`` for every embedded signature and
   ``validate_pdf_timestamp`` for document timestamps, each with a fresh ``ValidationContext``
   holding the same root and CRLs, fetching off, revocation hard-fail (as the platform's).

``verify_isolated`` (the same verification in a sandboxed child process, the path for uploads)
is timed apart with fewer rounds: it is dominated by starting the child. Target: a/b <= 1.2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from io import BytesIO
from pathlib import Path

import _common as common
from _install import PEOPLE, Installation, installation, signed_contract
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.status import DocumentTimestampStatus, PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from econtract.signing.report import Verdict
from econtract.signing.verify import TrustSpec, verify_isolated, verify_pdf


@dataclass(frozen=True)
class File:
    label: str
    data: bytes


def bare_validate(data: bytes, context: Callable[[], ValidationContext]) -> list[str]:
    """pyHanko alone; returns one line per signature (intact, valid, trusted)."""
    reader = PdfFileReader(BytesIO(data), strict=True)
    results = []
    for sig in reader.embedded_signatures:
        status: PdfSignatureStatus | DocumentTimestampStatus
        if sig.sig_object_type == "/DocTimeStamp":
            status = validate_pdf_timestamp(sig, validation_context=context())
        else:
            status = validate_pdf_signature(sig, signer_validation_context=context())
        ok = status.intact and status.valid and status.trusted
        results.append(f"{sig.field_name}: {'intact, valid, trusted' if ok else status.summary()}")
    return results


def bare_context(trust: TrustSpec) -> Callable[[], ValidationContext]:
    roots = [asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))
             for root in trust.roots]

    def fresh() -> ValidationContext:
        return ValidationContext(trust_roots=roots, crls=list(trust.crls), allow_fetching=False,
                                 revocation_mode="hard-fail")

    return fresh


def make_files(inst: Installation) -> list[File]:
    pdf = common.contract_pdf(1)
    one = File("1 signer, signed", inst.current_pdf(
        signed_contract(inst, pdf, PEOPLE[:1], title="One signer")))
    three = signed_contract(inst, pdf, PEOPLE, title="Three signers")
    if inst.seal_pending() < 1:
        raise RuntimeError("the seal job did not run")
    return [one, File("3 signers, sealed", inst.current_pdf(three))]


def check(files: list[File], trust: TrustSpec) -> None:
    """Both verifiers must accept the files, or the comparison means nothing."""
    for file in files:
        report = verify_pdf(file.data, trust)
        print(f"- {file.label}: {len(file.data):,} bytes, {len(report.signatures)} signatures; "
              f"platform verdict {report.verdict.value}")
        if report.verdict is not Verdict.VALID:
            raise RuntimeError(f"the platform does not accept its own file: {report.to_dict()}")
        for line in bare_validate(file.data, bare_context(trust)):
            print(f"  - bare pyHanko, {line}")


def cases(files: list[File], trust: TrustSpec) -> dict[str, common.Case]:
    context = bare_context(trust)
    found: dict[str, common.Case] = {}
    for file in files:
        found[f"{file.label} platform"] = common.quiet(partial(verify_pdf, file.data, trust))
        found[f"{file.label} bare"] = common.quiet(partial(bare_validate, file.data, context))
    return found


def isolated_cases(files: list[File], trust: TrustSpec) -> dict[str, common.Case]:
    return {f"{file.label} isolated": common.quiet(partial(verify_isolated, file.data, trust))
            for file in files}


def report(files: list[File], stats: dict[str, common.Stats]) -> list[common.Target]:
    targets = []
    for file in files:
        print(f"\n## {file.label}\n")
        print(common.stats_table(stats, {
            f"{file.label} platform": "**a. platform verify_pdf**",
            f"{file.label} bare": "**b. bare pyHanko validation**",
            f"{file.label} isolated": "verify_isolated (sandboxed child process; CPU: parent)",
        }))
        a, b = stats[f"{file.label} platform"], stats[f"{file.label} bare"]
        targets.append(common.ratio_target(f"{file.label}: a/b (platform / bare)", a, b, 1.2))
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--isolated-rounds", type=int, default=5)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default SQLite)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    info = common.print_header("bench/verify.py", {
        "rounds": args.rounds, "warm-up rounds": args.warmup,
        "verify_isolated rounds": args.isolated_rounds})
    with tempfile.TemporaryDirectory(prefix="econtract-bench-") as tmp, \
            installation(Path(tmp), args.database_url) as inst:
        files = make_files(inst)
        trust = inst.trust()
    check(files, trust)
    samples = common.run_rounds(cases(files, trust), rounds=args.rounds, warmup=args.warmup)
    samples.update(common.run_rounds(isolated_cases(files, trust), rounds=args.isolated_rounds,
                                     warmup=1))
    stats = common.summarise(samples)
    targets = report(files, stats)
    return common.finish(args.json, machine=info, stats=stats, targets=targets)


if __name__ == "__main__":
    sys.exit(main())
