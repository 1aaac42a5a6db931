"""The sandbox's RSA webhook keys: generation or loading, publication and signing (section 14).

Each key is published as ``{"certSerial": S, "certPublic": P}`` where ``P`` is the PEM
SubjectPublicKeyInfo (LF line breaks) and ``S`` the uppercase hex MD5 of that exact PEM text.
Webhooks are signed with the active key: RSASSA-PKCS1-v1_5 over SHA-256, base64. Loading a
PEM that is not an unencrypted RSA private key raises ``ValueError`` or ``TypeError``.
"""

from __future__ import annotations

import base64
import hashlib

import attrs
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_BITS = 2048


@attrs.frozen
class SigningKey:
    """One RSA private key with its published PEM and serial."""

    private_key: rsa.RSAPrivateKey = attrs.field(repr=False)
    public_pem: str
    serial: str

    @classmethod
    def from_private_key(cls, key: rsa.RSAPrivateKey) -> SigningKey:
        """Wrap ``key`` and compute its publication form."""
        pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )
        serial = hashlib.md5(pem.encode("ascii"), usedforsecurity=False).hexdigest().upper()
        return cls(key, pem, serial)

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        """Load an unencrypted PEM private key; ``ValueError`` if it is not RSA."""
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the webhook signing key must be an RSA private key")
        return cls.from_private_key(key)

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh 2048-bit key (a fraction of a second of CPU)."""
        return cls.from_private_key(
            rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        )

    def sign(self, payload: bytes) -> str:
        """Base64 RSASSA-PKCS1-v1_5/SHA-256 signature of ``payload``."""
        signature = self.private_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (for saving a sandbox key to a file)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@attrs.define
class KeyRing:
    """Every published key and which one signs; rotation switches or adds the signing key."""

    keys: list[SigningKey]
    active: int = 0

    @classmethod
    def build(cls, primary: bytes | None, extra: tuple[bytes, ...], active: int) -> KeyRing:
        """Load ``primary`` (or generate one) and the ``extra`` keys, all published at once."""
        first = SigningKey.from_pem(primary) if primary is not None else SigningKey.generate()
        return cls([first, *(SigningKey.from_pem(pem) for pem in extra)], active)

    @property
    def signing_key(self) -> SigningKey:
        """The key that signs new webhooks."""
        return self.keys[self.active]

    def certificates(self) -> list[dict[str, str]]:
        """The ``data`` array of the certificates endpoint."""
        return [{"certSerial": key.serial, "certPublic": key.public_pem} for key in self.keys]

    def rotate(self) -> str:
        """Sign with the next published key, generating one if there is none; return its serial."""
        if self.active + 1 >= len(self.keys):
            self.keys.append(SigningKey.generate())
        self.active += 1
        return self.signing_key.serial
