"""Session-wide PKI material: RSA-3072 key generation is the slow part, so it happens once."""

from __future__ import annotations

import os

import pytest

from econtract.pki import (
    PlatformPki,
    TimeStampAuthority,
    create_platform_pki,
    issue_signer_certificate,
    new_signer_key,
)
from econtract.storage.crypto import KEY_BYTES, MasterKeyring
from tests.pki._support import BASE_URL, ISSUED, Signer


@pytest.fixture(scope="session")
def pki() -> PlatformPki:
    return create_platform_pki(name="Acme 电子合同", base_url=BASE_URL, now=ISSUED)


def make_signer(pki: PlatformPki, name: str, email: str) -> Signer:
    key = new_signer_key()
    cert = issue_signer_certificate(pki.issuing, public_key=key.public_key(), name=name,
                                    email=email, base_url=BASE_URL, now=ISSUED)
    return Signer(key, cert)


@pytest.fixture(scope="session")
def signer(pki: PlatformPki) -> Signer:
    return make_signer(pki, "张三", "zhangsan@example.cn")


@pytest.fixture(scope="session")
def tsa(pki: PlatformPki) -> TimeStampAuthority:
    return TimeStampAuthority(pki.tsa.certificate, pki.tsa.private_key,
                              chain=[pki.root.certificate])


@pytest.fixture
def keyring() -> MasterKeyring:
    return MasterKeyring({1: os.urandom(KEY_BYTES)}, active=1)
