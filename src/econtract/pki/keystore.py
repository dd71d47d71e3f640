"""Private keys at rest: platform keys under the master key, signer keys under PIN + master key.

Platform keys (root, signer CA, TSA, seal) are PKCS#8 DER sealed with ``storage.crypto.encrypt``
(AES-256-GCM envelope under the master keyring) with AAD ``econtract-pki-v1|<label>``, so a blob
copied to another label (e.g. the seal key swapped for the root key) does not open.

Per-signer keys need the signer's PIN *and* the master key (ESL Art. 13 "sole control"; a database
leak alone cannot be brute-forced offline, the master key file is also needed)::

    outer = storage.crypto.encrypt(keyring, header || inner, "econtract-signer-key-v1|" + aad)
    header = b"ESK1" | time_cost u32 | memory_cost KiB u32 | parallelism u8 | salt 16 | nonce 12
    KEK    = Argon2id(NFKC(pin), salt, time_cost, memory_cost, parallelism) -> 32 bytes
    inner  = AES-256-GCM(KEK, nonce, PKCS#8 DER, AAD = "econtract-signer-key-v1|" + header + aad)

The Argon2 parameters travel in the header, so ``PIN_PARAMS`` can be raised later and old blobs
still open (re-protect them at the next unlock if wanted). The outer layer is opened first: if it
fails the blob was altered or belongs elsewhere (``IntegrityError``); once it has proven the bytes
are ours, an inner failure can only mean a wrong PIN (``PinIncorrect``). Counting wrong PINs and
locking (``SigningLocked``) is the caller's job: it owns the persistent counter.

Argon2id parameters (``PIN_PARAMS``): time_cost 2, memory_cost 48 MiB (49152 KiB),
parallelism 1, 32-byte output. Measured on the project's 2-core machine (performance.md): medians
of 81-118 ms per derivation over several runs (single runs 80-124 ms; the machine is shared). The
target is 50-250 ms: 64 MiB took 127-168 ms and came too close to the ceiling when the machine was
busy. parallelism 1 keeps one unlock on one core so concurrent requests are not starved (p=2 was
no faster here). PINs are NFKC-normalised first, so full-width digits typed with a Chinese IME
("１２３４５６") equal ASCII digits.
"""

from __future__ import annotations

import itertools
import secrets
import struct
import unicodedata
from dataclasses import dataclass
from typing import NoReturn

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from econtract.errors import IntegrityError, PinIncorrect, ValidationFailed
from econtract.pki.certs import PrivateKey
from econtract.storage.crypto import MasterKeyring, decrypt, encrypt

_PLATFORM_AAD = b"econtract-pki-v1|"
_SIGNER_AAD = b"econtract-signer-key-v1|"
_SIGNER_MAGIC = b"ESK1"
_HEADER = struct.Struct(">4sIIB16s12s")  # magic, time, memory KiB, lanes, salt, nonce
_KEK_BYTES = 32

PIN_MIN, PIN_MAX = 6, 64


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost parameters (memory in KiB), stored in every signer-key blob."""

    time_cost: int
    memory_cost: int
    parallelism: int

    def check(self) -> None:
        """Bounds for parameters read back: a huge value would be a denial of service."""
        if not (1 <= self.time_cost <= 20 and 8 * self.parallelism <= self.memory_cost <= 1 << 20
                and 1 <= self.parallelism <= 16):
            raise IntegrityError("signer key blob failed its integrity check: "
                                 "its Argon2 parameters are out of bounds")


PIN_PARAMS = Argon2Params(time_cost=2, memory_cost=48 * 1024, parallelism=1)


# --- platform keys -------------------------------------------------------------------------------

def _pkcs8(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_pkcs8(der: bytes, what: str) -> PrivateKey:
    # Only ever called on bytes that just passed AES-GCM authentication under our master key, so
    # they are a key we serialised ourselves: skipping OpenSSL's RSA consistency check is safe and
    # saves ~40 ms per load (performance.md §3). Never call this on unauthenticated input.
    try:
        key = serialization.load_der_private_key(der, password=None,
                                                 unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError):
        raise IntegrityError(f"{what} failed its integrity check: not a private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise IntegrityError(f"{what} failed its integrity check: unsupported key type")
    return key


def seal_platform_key(keyring: MasterKeyring, key: PrivateKey, *, label: str) -> bytes:
    """Encrypt a platform private key under the master key, bound to ``label`` (e.g. "seal")."""
    return encrypt(keyring, _pkcs8(key), _PLATFORM_AAD + label.encode("utf-8"))


def open_platform_key(keyring: MasterKeyring, blob: bytes, *, label: str) -> PrivateKey:
    """Decrypt a platform key; a damaged blob or the wrong label is an ``IntegrityError``."""
    der = decrypt(keyring, blob, _PLATFORM_AAD + label.encode("utf-8"))
    return _load_pkcs8(der, "platform key")


# --- signer keys ---------------------------------------------------------------------------------

def normalise_pin(pin: str) -> bytes:
    """The bytes Argon2 sees: NFKC (full-width digits become ASCII), then UTF-8."""
    return unicodedata.normalize("NFKC", pin).encode("utf-8")


def derive_kek(pin: str, salt: bytes, params: Argon2Params = PIN_PARAMS) -> bytes:
    """Argon2id(PIN, salt): the deliberately slow step (see the module docstring for its cost)."""
    return bytes(hash_secret_raw(normalise_pin(pin), salt, time_cost=params.time_cost,
                                 memory_cost=params.memory_cost, parallelism=params.parallelism,
                                 hash_len=_KEK_BYTES, type=Type.ID))


def protect_signer_key(key: PrivateKey, *, pin: str, keyring: MasterKeyring, aad: bytes,
                       params: Argon2Params = PIN_PARAMS) -> bytes:
    """Encrypt a signer's key under their PIN and the master key; ``aad`` binds it to them."""
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = _HEADER.pack(_SIGNER_MAGIC, params.time_cost, params.memory_cost,
                          params.parallelism, salt, nonce)
    inner = AESGCM(derive_kek(pin, salt, params)).encrypt(
        nonce, _pkcs8(key), _SIGNER_AAD + header + aad)
    return encrypt(keyring, header + inner, _SIGNER_AAD + aad)


def unlock_signer_key(blob: bytes, *, pin: str, keyring: MasterKeyring,
                      aad: bytes) -> PrivateKey:
    """Open a signer key: ``IntegrityError`` if the blob is not intact, ``PinIncorrect`` if the
    PIN is wrong. Costs one Argon2id derivation."""
    header, inner = _open_outer(blob, keyring, aad)
    _, time_cost, memory_cost, lanes, salt, nonce = _HEADER.unpack(header)
    params = Argon2Params(time_cost, memory_cost, lanes)
    params.check()
    try:
        der = AESGCM(derive_kek(pin, salt, params)).decrypt(nonce, inner,
                                                             _SIGNER_AAD + header + aad)
    except InvalidTag:
        # The outer layer authenticated these bytes, so only the PIN can be wrong here.
        raise PinIncorrect("the signing PIN is not correct") from None
    return _load_pkcs8(der, "signer key blob")


def signer_key_params(blob: bytes, *, keyring: MasterKeyring, aad: bytes) -> Argon2Params:
    """The Argon2 parameters a signer-key blob was protected with (no PIN needed, no Argon2 run):
    after a successful unlock, re-protect the key if they are weaker than ``PIN_PARAMS``."""
    header, _ = _open_outer(blob, keyring, aad)
    _, time_cost, memory_cost, lanes, _, _ = _HEADER.unpack(header)
    return Argon2Params(time_cost, memory_cost, lanes)


def _open_outer(blob: bytes, keyring: MasterKeyring, aad: bytes) -> tuple[bytes, bytes]:
    opened = decrypt(keyring, blob, _SIGNER_AAD + aad)  # IntegrityError: altered or misplaced
    if len(opened) < _HEADER.size or opened[:4] != _SIGNER_MAGIC:
        raise IntegrityError("signer key blob failed its integrity check: unknown format")
    return opened[:_HEADER.size], opened[_HEADER.size:]


# --- PIN rules -----------------------------------------------------------------------------------

# Digit PINs that follow no simple rule below but top every leaked-PIN list (keypad columns and
# diagonals, mirrored pairs, the Chinese "I love you" numbers).
_COMMON_PINS = frozenset({"112233", "123321", "147258", "258369", "159357", "159753",
                          "520520", "5201314", "1314520", "147369", "321123"})


def check_pin_rules(pin: str) -> None:
    """Refuse PINs too short, too long or trivially guessable: ``ValidationFailed(weak_pin)``."""
    normal = unicodedata.normalize("NFKC", pin)
    if not PIN_MIN <= len(normal) <= PIN_MAX:
        _weak(f"the PIN must have {PIN_MIN} to {PIN_MAX} characters", "length")
    if len(set(normal)) == 1:
        _weak("the PIN must not repeat a single character", "repeated")
    if normal.isascii() and normal.isdigit():
        if _is_sequence(normal):
            _weak("the PIN must not be a run of consecutive digits", "sequence")
        if _is_periodic(normal):
            _weak("the PIN must not repeat a short group of digits", "repeated")
        if normal in _COMMON_PINS:
            _weak("this PIN is among the most commonly used ones", "common")


def _weak(message: str, reason: str) -> NoReturn:
    raise ValidationFailed(message, code="weak_pin", details={"reason": reason})


def _is_sequence(digits: str) -> bool:
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(digits)}
    return steps in ({1}, {9})  # ascending or descending, wrapping (890123, 210987)


def _is_periodic(digits: str) -> bool:
    # 121212, 123123, 12341234: a block of at most half the length, repeated.
    return any(len(digits) % size == 0 and digits == digits[:size] * (len(digits) // size)
               for size in range(1, len(digits) // 2 + 1))
