"""The platform PKI: CAs, signer certificates, CRLs, OCSP, an RFC 3161 TSA, and keys at rest.

Pure: certificates, keys and bytes in, bytes and objects out; no database, web or settings.
"""

from econtract.pki.certs import (
    ROOT_SLUG,
    SEAL_SLUG,
    SIGNER_CA_SLUG,
    TSA_SLUG,
    CaMaterial,
    PlatformPki,
    PrivateKey,
    PublicKey,
    ca_cert_url,
    create_platform_pki,
    crl_url,
    issue_signer_certificate,
    new_signer_key,
    ocsp_url,
)
from econtract.pki.crl import Revocation, build_crl
from econtract.pki.keystore import (
    PIN_PARAMS,
    Argon2Params,
    check_pin_rules,
    open_platform_key,
    protect_signer_key,
    seal_platform_key,
    signer_key_params,
    unlock_signer_key,
)
from econtract.pki.ocsp import CertStatus, StatusLookup, respond
from econtract.pki.tsa import DEFAULT_POLICY_OID, TimeStampAuthority

__all__ = [
    "DEFAULT_POLICY_OID",
    "PIN_PARAMS",
    "ROOT_SLUG",
    "SEAL_SLUG",
    "SIGNER_CA_SLUG",
    "TSA_SLUG",
    "Argon2Params",
    "CaMaterial",
    "CertStatus",
    "PlatformPki",
    "PrivateKey",
    "PublicKey",
    "Revocation",
    "StatusLookup",
    "TimeStampAuthority",
    "build_crl",
    "ca_cert_url",
    "check_pin_rules",
    "create_platform_pki",
    "crl_url",
    "issue_signer_certificate",
    "new_signer_key",
    "ocsp_url",
    "open_platform_key",
    "protect_signer_key",
    "respond",
    "seal_platform_key",
    "signer_key_params",
    "unlock_signer_key",
]
