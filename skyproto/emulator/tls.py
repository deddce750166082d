"""Certificates for the emulator's TLS mode: a throw-away CA and a leaf for the loopback names.

``cryptography`` (the ``tls`` extra) is imported only when certificates are made. Nothing here
reads the clock or touches a file: the validity period starts at the ``now`` given, and the
server writes the PEM text where clients can read it.

Internal to the emulator (``EmulatorServer(tls=True)`` uses it); nothing here is public API.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

import attrs

__all__: list[str] = []

#: The names the leaf certificate is valid for.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_VALIDITY = dt.timedelta(days=30)


@attrs.frozen
class TlsMaterial:
    """PEM text: the CA certificate clients trust, and the server's chain and private key."""

    ca_pem: bytes = attrs.field(repr=False)
    cert_chain_pem: bytes = attrs.field(repr=False)
    key_pem: bytes = attrs.field(repr=False)


def _crypto() -> Any:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:
        raise ImportError(
            "the emulator's TLS mode needs the 'cryptography' package; "
            "install the tls extra: pip install 'skyproto[tls]'"
        ) from exc
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def generate(now: dt.datetime, names: tuple[str, ...] = LOOPBACK_NAMES) -> TlsMaterial:
    """A fresh CA and a leaf certificate for ``names`` (host names or IP addresses).

    Both are valid from an hour before ``now`` for 30 days. Keys are ECDSA P-256.
    """
    x509, hashes, serialization, ec, eku, name_oid = _crypto()
    start = now - dt.timedelta(hours=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(name_oid.COMMON_NAME, "skyproto emulator CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    alt_names = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(name_oid.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem: bytes = ca_cert.public_bytes(pem)
    key_pem: bytes = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return TlsMaterial(ca_pem, leaf_cert.public_bytes(pem) + ca_pem, key_pem)
