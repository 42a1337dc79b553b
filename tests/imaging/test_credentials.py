"""Content Credentials without edits (imaging/credentials.py): a certificate made here signs an
encoded image, c2pa.Reader reads it back Trusted under the CA made here, the pixels are untouched;
a bad certificate or key is refused naming the file; the local identity is made once, reused."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.errors import InvalidInputError
from lasso_edit.imaging import credentials


def make_identity(folder: Path, days: int = 30, self_signed: bool = False) -> tuple[Path, Path, Path]:
    """A local CA and a signing leaf (emailProtection) in `folder`: (ca.pem, chain.pem, key.pem).
    `days` < 0: an expired leaf; `self_signed`: a leaf that is its own issuer."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test org")]
        )

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Test CA"))
        .issuer_name(name("Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    issuer, signing_key = (name("Test signer"), leaf_key) if self_signed else (ca.subject, ca_key)
    end = now + dt.timedelta(days=days) if days > 0 else now + dt.timedelta(days=days)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("Test signer"))
        .issuer_name(issuer)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=10))
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(signing_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "chain.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (folder / "key.pem").write_bytes(key)
    return folder / "ca.pem", folder / "chain.pem", folder / "key.pem"


MANIFEST = {
    "claim_generator_info": [{"name": "test", "version": "1"}],
    "assertions": [
        {
            "label": "c2pa.actions.v2",
            "data": {
                "actions": [
                    {
                        "action": "c2pa.created",
                        "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
                    }
                ]
            },
        }
    ],
}


def _encoded(fmt: str) -> tuple[bytes, np.ndarray]:
    pixels = (np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue(), np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_signed_bytes_read_back_trusted_under_the_ca_with_the_same_pixels(fmt, tmp_path):
    ca, chain, key = make_identity(tmp_path)
    data, pixels = _encoded(fmt)
    mime = credentials.MIME[fmt]
    dest = io.BytesIO()
    credentials.sign(data, mime, MANIFEST, credentials.load_identity(chain, key), dest)
    signed = dest.getvalue()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(signed)).convert("RGB")), pixels)
    found = credentials.read(signed, mime, [ca.read_bytes()])
    assert found is not None and found["state"] == "Trusted" and "Test signer" in found["signer"]
    assert credentials.read(signed, mime)["state"] == "Valid"  # signed, the CA not trusted
    assert credentials.read(data, mime) is None  # unsigned: no credentials


def test_a_file_changed_after_signing_reads_invalid(tmp_path):
    ca, chain, key = make_identity(tmp_path)
    data, _ = _encoded("PNG")
    dest = io.BytesIO()
    credentials.sign(data, "image/png", MANIFEST, credentials.load_identity(chain, key), dest)
    tampered = bytearray(dest.getvalue())
    at = tampered.find(b"IDAT") + 20
    tampered[at] ^= 0xFF
    found = credentials.read(bytes(tampered), "image/png", [ca.read_bytes()])
    assert found["state"] == "Invalid" and "assertion.dataHash.mismatch" in found["failures"]


def test_bad_certificates_and_keys_are_refused_naming_the_file(tmp_path):
    _, chain, key = make_identity(tmp_path / "a")
    _, other_chain, other_key = make_identity(tmp_path / "b")
    _, old_chain, old_key = make_identity(tmp_path / "old", days=-1)
    _, own_chain, own_key = make_identity(tmp_path / "own", self_signed=True)
    cases = [
        (tmp_path / "missing.pem", key, "cannot read"),
        (key, key, "no PEM certificate"),
        (chain, chain, "not an unencrypted PEM private key"),
        (chain, other_key, "does not match"),
        (old_chain, old_key, "expired"),
        (own_chain, own_key, "self-signed"),
    ]
    for cert_path, key_path, reason in cases:
        with pytest.raises(InvalidInputError, match=reason) as e:
            credentials.load_identity(cert_path, key_path)
        assert e.value.exit_code == 2 and (str(cert_path) in str(e.value) or str(key_path) in str(e.value))
    assert credentials.load_identity(other_chain, other_key).alg == "es256"


def test_the_local_identity_is_made_once_announced_once_and_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    first = credentials.local_identity()
    said = capsys.readouterr().err
    folder = tmp_path / "config" / "lasso" / "credentials"
    assert str(folder) in said and "--sign-cert" in said and "--no-credentials" in said
    assert first.local and first.key_path == folder / "signer-key.pem"
    assert os.stat(folder / "signer-key.pem").st_mode & 0o777 == 0o600
    assert os.stat(folder / "ca-key.pem").st_mode & 0o777 == 0o600
    second = credentials.local_identity()
    assert capsys.readouterr().err == "" and second.chain == first.chain and second.key == first.key
    data, _ = _encoded("PNG")
    dest = io.BytesIO()
    credentials.sign(data, "image/png", MANIFEST, second, dest)
    found = credentials.read(dest.getvalue(), "image/png", [(folder / "ca.pem").read_bytes()])
    assert found["state"] == "Trusted" and json.dumps(found["manifest"])
