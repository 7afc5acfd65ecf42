"""The CA bundle given to every sandbox: chosen by the person running pipe (`--ca-bundle FILE` or
PIPE_CA_BUNDLE), never by a pipeline file (docs/architecture.md, Principles 11).

The file is read with a size bound, must hold at least one PEM certificate, and only its
certificates (re-encoded, so nothing else in the file such as a private key travels along) are
copied into the state directory under their SHA-256; the copy is what sandboxes mount read-only.
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
import stat
import tempfile
from pathlib import Path

from runner.errors import UsageError
from runner.statedir import StateDir

MAX_BUNDLE_BYTES = 16 * 1024 * 1024
_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL)


def certificates(data: bytes, source: str) -> bytes:
    """The PEM certificates in `data`, re-encoded one after another.

    Raises UsageError naming `source` when there is none or one does not parse."""
    found = _CERTIFICATE.findall(data)
    if not found:
        raise UsageError(f"CA bundle {source}: no PEM certificate in it")
    pems = []
    for index, block in enumerate(found, 1):
        try:
            der = ssl.PEM_cert_to_DER_cert(block.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise UsageError(f"CA bundle {source}: certificate {index} is not valid PEM") from None
        pems.append(ssl.DER_cert_to_PEM_cert(der))
    text = "".join(pems)
    try:
        ssl.create_default_context(cadata=text)
    except ssl.SSLError as error:
        raise UsageError(f"CA bundle {source}: {error.reason or error}") from None
    return text.encode("ascii")


def install_ca_bundle(source: Path, state_dir: Path) -> Path:
    """Check the CA bundle at `source` and copy its certificates to `state_dir/ca/<sha256>.pem`
    (mode 0644, written atomically); returns the copy. Raises UsageError (exit 2) when `source`
    is not a readable regular file of at most MAX_BUNDLE_BYTES holding PEM certificates."""
    try:
        descriptor = os.open(source, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise UsageError(f"CA bundle {source}: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"CA bundle {source}: not a regular file")
        data = handle.read(MAX_BUNDLE_BYTES + 1)
    if len(data) > MAX_BUNDLE_BYTES:
        raise UsageError(f"CA bundle {source}: larger than {MAX_BUNDLE_BYTES} bytes")
    pem = certificates(data, str(source))
    directory = StateDir(state_dir).ca
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{hashlib.sha256(pem).hexdigest()}.pem"
    if not target.is_file():
        handle_fd, temporary = tempfile.mkstemp(dir=directory, prefix=".ca-")
        with os.fdopen(handle_fd, "wb") as out:
            out.write(pem)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    return target
