"""Content Credentials (C2PA), knowing nothing of edits: who signs (`SigningIdentity`: an
organisation's certificate and key, checked, or the local identity Lasso makes once in the user's
config folder), signing encoded bytes with a manifest straight into a file (`sign`), and reading a
file's manifest back (`read`). Built on the official `c2pa-python` package and `cryptography`,
both imported inside the functions so that `lasso --help` stays instant.

What c2pa-python 0.38.1 accepts (tried here; 0.38.2 was not on this machine's mirror): a region of
interest with a `role` ("c2pa.edited", "c2pa.areaOfInterest") is signed but fails to read back
("expected enum Role"), so regions carry no role; an `opened` action must name its parentOf
ingredient (`parameters.ingredientIds`) or validation fails; a self-signed leaf is rejected, a leaf
issued by a CA with the emailProtection extended key usage validates. Thumbnails are off: the
manifest says what changed and where, and a 24 MP thumbnail would cost a decode per signature."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..core.errors import InvalidInputError

# The formats Lasso writes that C2PA signs, by Pillow's format name; any other output gets a
# warning naming its format and no manifest.
MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}
_LIFETIME_DAYS = 3650  # the local identity's certificates: ten years
_ANNOUNCE = (
    "Lasso made a local signing identity for Content Credentials in {folder} (a CA and a signing "
    "certificate; the key is readable by you alone). Every edit is signed with it; outputs read as "
    "Valid, or Trusted where {ca} is trusted (lasso verify --trust). To sign as your organisation, "
    "pass --sign-cert CHAIN.pem --sign-key KEY.pem (or set LASSO_SIGN_CERT and LASSO_SIGN_KEY); "
    "--no-credentials writes none."
)


@dataclass(frozen=True)
class SigningIdentity:
    """A certificate chain (PEM, leaf first) and its private key (PEM), checked to match."""

    chain: bytes
    key: bytes
    alg: str  # c2pa's algorithm name: es256, es384, es512, ed25519, ps256
    cert_path: Path | None = None
    key_path: Path | None = None
    local: bool = False  # Lasso's own identity (config folder), not an organisation's


def config_dir() -> Path:
    """Lasso's config folder: $XDG_CONFIG_HOME/lasso, else %APPDATA%\\lasso on Windows, else ~/.config/lasso."""
    base = os.environ.get("XDG_CONFIG_HOME") or (os.environ.get("APPDATA") if os.name == "nt" else None)
    return Path(base or Path.home() / ".config") / "lasso"


def load_identity(cert: str | os.PathLike, key: str | os.PathLike) -> SigningIdentity:
    """An organisation's identity from a PEM chain (leaf first) and a PEM key, checked now (before
    any model loads): readable, the key matching the leaf, the leaf in its validity period, not
    self-signed. Raises InvalidInputError (exit 2) naming the file and the reason."""
    cert, key = Path(cert).expanduser(), Path(key).expanduser()
    chain, key_pem = _read(cert, "certificate"), _read(key, "key")
    return _checked(chain, key_pem, cert, key)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvalidInputError(f"cannot read the signing {what} {str(path)!r}: {e.strerror or e}") from None


def _checked(chain: bytes, key_pem: bytes, cert: Path | None, key: Path | None, local: bool = False) -> SigningIdentity:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(chain)
    except ValueError:
        raise InvalidInputError(f"signing certificate {str(cert)!r} holds no PEM certificate") from None
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise InvalidInputError(f"signing key {str(key)!r} is not an unencrypted PEM private key: {e}") from None
    leaf = certs[0]
    if leaf.public_key().public_bytes(*_spki()) != private.public_key().public_bytes(*_spki()):
        raise InvalidInputError(f"signing key {str(key)!r} does not match the certificate {str(cert)!r}")
    now = dt.datetime.now(dt.timezone.utc)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        when = leaf.not_valid_after_utc.date() if now > leaf.not_valid_after_utc else leaf.not_valid_before_utc.date()
        state = "expired on" if now > leaf.not_valid_after_utc else "is not valid until"
        raise InvalidInputError(f"signing certificate {str(cert)!r} {state} {when}")
    if leaf.issuer == leaf.subject:
        raise InvalidInputError(
            f"signing certificate {str(cert)!r} is self-signed; C2PA needs a leaf issued by a CA "
            "(with the emailProtection extended key usage), the CA after it in the file"
        )
    return SigningIdentity(chain, key_pem, _alg(private), cert, key, local)


def _spki() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


def _alg(private: Any) -> str:
    """c2pa's name for the key's signature algorithm."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(private, ec.EllipticCurvePrivateKey):
        return {256: "es256", 384: "es384", 521: "es512"}.get(private.curve.key_size, "es256")
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(private, rsa.RSAPrivateKey):
        return "ps256"
    raise InvalidInputError(f"C2PA cannot sign with a {type(private).__name__}; use an EC, Ed25519 or RSA key")


def local_identity(folder: Path | None = None) -> SigningIdentity:
    """Lasso's own identity in `folder` (config_dir()/credentials): made on first use (a CA and a
    signing leaf, the key files mode 0600) and announced once on stderr, reused after."""
    folder = folder or config_dir() / "credentials"
    chain, key = folder / "signer-chain.pem", folder / "signer-key.pem"
    if not (chain.exists() and key.exists()):
        _make_local(folder, chain, key)
        sys.stderr.write(_ANNOUNCE.format(folder=folder, ca=folder / "ca.pem") + "\n")
    return _checked(_read(chain, "certificate"), _read(key, "key"), chain, key, local=True)


def _make_local(folder: Path, chain: Path, key: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(ca_key, ca_key, "Lasso local CA", None)
    leaf = _certificate(leaf_key, ca_key, "Lasso local signer", ca)
    pem = serialization.Encoding.PEM
    pkcs8, plain = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    _private_file(folder / "ca-key.pem", ca_key.private_bytes(pem, pkcs8, plain))
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    chain.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    _private_file(key, leaf_key.private_bytes(pem, pkcs8, plain))  # last: its presence means complete


def _private_file(path: Path, data: bytes) -> None:
    """Write `data` to a file only its owner reads (0600 from its creation, not chmod after)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _certificate(key: Any, issuer_key: Any, name: str, issuer: Any) -> Any:
    """A CA certificate (issuer None: self-signed) or a signing leaf issued by `issuer`, with the
    key usages C2PA accepts (digitalSignature, emailProtection)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lasso")]
    )
    now = dt.datetime.now(dt.timezone.utc)
    b = x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject if issuer else subject)
    b = b.public_key(key.public_key()).serial_number(x509.random_serial_number())
    b = b.not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=_LIFETIME_DAYS))
    is_ca = issuer is None
    b = b.add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), critical=True)
    usage = dict.fromkeys(
        (
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    b = b.add_extension(
        x509.KeyUsage(digital_signature=not is_ca, key_cert_sign=is_ca, crl_sign=is_ca, **usage), critical=True
    )
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if not is_ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _context(settings: dict[str, Any]) -> Any:
    import c2pa

    return c2pa.Context(c2pa.Settings.from_json(json.dumps(settings)))


def sign(
    data: bytes,
    mime: str,
    manifest: dict[str, Any],
    identity: SigningIdentity,
    dest: BinaryIO,
    ingredients: list[tuple[dict[str, Any], str, bytes]] = (),  # type: ignore[assignment]
    timestamp_url: str | None = None,
) -> None:
    """Sign the encoded image `data` (`mime`) with `manifest` (a c2pa manifest definition) and write
    the signed file to `dest`, in one pass, the pixels untouched (the manifest goes in the format's
    own metadata: PNG chunks, JPEG APP11 segments). `ingredients`: (definition, mime, file bytes);
    c2pa carries an ingredient's own manifest. `timestamp_url`: a time-stamp authority (None: offline)."""
    import c2pa

    builder = c2pa.Builder(manifest, context=_context({"builder": {"thumbnail": {"enabled": False}}}))
    try:
        for definition, kind, blob in ingredients:
            builder.add_ingredient(definition, kind, io.BytesIO(blob))
        info = c2pa.C2paSignerInfo(identity.alg.encode(), identity.chain, identity.key, timestamp_url)
        signer = c2pa.Signer.from_info(info)
        builder.sign(signer, mime, io.BytesIO(data), dest)
    except c2pa.C2paError as e:
        raise InvalidInputError(f"Content Credentials could not be signed: {e}") from None
    finally:
        builder.close()


def read(data: bytes, mime: str, trust: list[bytes] = ()) -> dict[str, Any] | None:  # type: ignore[assignment]
    """A file's Content Credentials: None when it has none, else {state ("Valid", "Trusted" or
    "Invalid", as c2pa reports it), signer, manifest (the active one), failures (codes)}. `trust`:
    PEM trust anchors (a CA) under which a valid signature reads as Trusted."""
    import c2pa

    settings: dict[str, Any] = {"builder": {"thumbnail": {"enabled": False}}}
    if trust:
        settings["trust"] = {"user_anchors": b"\n".join(trust).decode()}
    try:
        reader = c2pa.Reader(mime, io.BytesIO(data), context=_context(settings))
    except c2pa.C2paError as e:
        if "ManifestNotFound" in type(e).__name__ or "no JUMBF" in str(e) or "not found" in str(e).lower():
            return None
        return {"state": "Invalid", "signer": None, "manifest": None, "failures": [str(e)]}
    try:
        store = json.loads(reader.json())
        state = reader.get_validation_state()
    finally:
        reader.close()
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    failures = [
        f.get("code", "") for f in store.get("validation_results", {}).get("activeManifest", {}).get("failure", [])
    ]
    sig = active.get("signature_info") or {}
    signer = ", ".join(x for x in (sig.get("common_name"), sig.get("issuer")) if x) or None
    return {"state": str(state or "Invalid"), "signer": signer, "manifest": active, "failures": failures}


def mime_of_bytes(data: bytes) -> str | None:
    """The C2PA mime type of an encoded image from its first bytes (None: a format C2PA does not sign)."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    return None


__all__ = ["MIME", "SigningIdentity", "config_dir", "load_identity", "local_identity", "mime_of_bytes", "read", "sign"]
