"""Certificates and keys for the local control plane, made with `cryptography`.

`controlplane.ControlPlane.start` calls this module once per state folder to create a small certificate
authority (CA), the kube-apiserver serving certificate, one client certificate per component and user, and
the key pair that signs service account tokens. All keys are ECDSA P-256. Nothing here talks to the
network; the certificates only have to be valid for 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Certificates start to be valid one hour in the past, so a small clock difference between the
# processes that check them does not matter.
_BACKDATE = datetime.timedelta(hours=1)
_VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class Credentials:
    """A PEM certificate and its PEM private key."""

    certificate_pem: bytes
    private_key_pem: bytes

    def write(self, certificate_path: Path, private_key_path: Path) -> None:
        """Write the certificate (mode 0644) and the private key (mode 0600)."""
        _write_file(certificate_path, self.certificate_pem, 0o644)
        _write_file(private_key_path, self.private_key_pem, 0o600)


def _write_file(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=mode, exist_ok=True)
    path.chmod(mode)
    path.write_bytes(data)


def _new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _subject(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, name) for name in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


class CertificateAuthority:
    """A self-signed CA that issues the serving and client certificates of the local cluster."""

    def __init__(self, certificate: x509.Certificate, private_key: ec.EllipticCurvePrivateKey) -> None:
        self.certificate = certificate
        self._private_key = private_key

    @classmethod
    def generate(cls, common_name: str) -> CertificateAuthority:
        """Create a new CA with a fresh key."""
        key = _new_private_key()
        name = _subject(common_name)
        certificate = (
            _builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True, key_cert_sign=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @classmethod
    def load(cls, certificate_path: Path, private_key_path: Path) -> CertificateAuthority:
        """Read a CA that `credentials().write` stored before."""
        certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
        key = serialization.load_pem_private_key(private_key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{private_key_path} does not contain an ECDSA private key")
        return cls(certificate, key)

    def credentials(self) -> Credentials:
        """Return the CA certificate and key in PEM form."""
        return Credentials(_certificate_pem(self.certificate), _private_key_pem(self._private_key))

    def issue_serving_certificate(
        self, common_name: str, dns_names: Sequence[str], ip_addresses: Sequence[str]
    ) -> Credentials:
        """Issue a TLS server certificate valid for DNS_NAMES and IP_ADDRESSES."""
        key = _new_private_key()
        alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        alternative_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
        certificate = (
            _builder(_subject(common_name), self.certificate.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
            .add_extension(self._authority_key_identifier(), critical=False)
            .sign(self._private_key, hashes.SHA256())
        )
        return Credentials(_certificate_pem(certificate), _private_key_pem(key))

    def issue_client_certificate(self, user: str, groups: Sequence[str] = ()) -> Credentials:
        """Issue a TLS client certificate for USER in GROUPS.

        kube-apiserver reads the user name from the common name and the groups from the organization
        attributes of the subject.
        """
        key = _new_private_key()
        certificate = (
            _builder(_subject(user, groups), self.certificate.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(self._authority_key_identifier(), critical=False)
            .sign(self._private_key, hashes.SHA256())
        )
        return Credentials(_certificate_pem(certificate), _private_key_pem(key))

    def _authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(self._private_key.public_key())


def generate_signing_key_pair() -> tuple[bytes, bytes]:
    """Return a new (private key PEM, public key PEM) pair for signing service account tokens."""
    key = _new_private_key()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _private_key_pem(key), public_pem
