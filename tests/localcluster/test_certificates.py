"""Unit tests for the certificate authority that the local control plane uses."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etl_localcluster._certs import CertificateAuthority, generate_signing_key_pair


@pytest.fixture(scope="module")
def authority() -> CertificateAuthority:
    return CertificateAuthority.generate("test-ca")


def load_certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def test_ca_is_self_signed_ca_with_p256_key(authority: CertificateAuthority) -> None:
    certificate = authority.certificate
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True
    assert certificate.issuer == certificate.subject
    certificate.verify_directly_issued_by(certificate)
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"


def test_serving_certificate_names_and_chain(authority: CertificateAuthority) -> None:
    credentials = authority.issue_serving_certificate(
        "kube-apiserver", ["localhost", "kubernetes.default.svc"], ["127.0.0.1", "10.0.0.1"]
    )
    certificate = load_certificate(credentials.certificate_pem)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "kubernetes.default.svc"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.0.1"),
    ]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    certificate.verify_directly_issued_by(authority.certificate)


def test_client_certificate_carries_user_and_groups(authority: CertificateAuthority) -> None:
    credentials = authority.issue_client_certificate("system:node:n1", ["system:nodes", "extra"])
    certificate = load_certificate(credentials.certificate_pem)
    subject = certificate.subject
    assert [attribute.value for attribute in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [
        "system:node:n1"
    ]
    assert [attribute.value for attribute in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:nodes",
        "extra",
    ]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    certificate.verify_directly_issued_by(authority.certificate)


def test_client_private_key_matches_certificate(authority: CertificateAuthority) -> None:
    credentials = authority.issue_client_certificate("kube-etl-admin", ["system:masters"])
    key = serialization.load_pem_private_key(credentials.private_key_pem, password=None)
    certificate = load_certificate(credentials.certificate_pem)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == certificate.public_key()


def test_ca_round_trips_through_files(authority: CertificateAuthority, tmp_path: Path) -> None:
    authority.credentials().write(tmp_path / "ca.crt", tmp_path / "ca.key")
    loaded = CertificateAuthority.load(tmp_path / "ca.crt", tmp_path / "ca.key")
    issued = load_certificate(loaded.issue_client_certificate("someone").certificate_pem)
    issued.verify_directly_issued_by(authority.certificate)
    assert (tmp_path / "ca.key").stat().st_mode & 0o777 == 0o600


def test_signing_key_pair_matches() -> None:
    private_pem, public_pem = generate_signing_key_pair()
    private_key = serialization.load_pem_private_key(private_pem, password=None)
    public_key = serialization.load_pem_public_key(public_pem)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    assert private_key.public_key() == public_key
