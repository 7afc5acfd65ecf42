"""The fake model server (tests/support/fake_model.py) in its own container on a test network,
outside every sandbox: what the key proxy forwards to in the Docker tests. `requests()` reads the
requests it logged (path, key_sha256 of the key it was sent, the conversation's text)."""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAKE_MODEL = Path(__file__).resolve().parent / "fake_model.py"
PORT = 8080
LOG = "/tmp/fake-model.jsonl"
TLS_PORT = 8443
SERVE = f"""
import os, ssl, sys, threading
sys.path.insert(0, "/srv")
import fake_model as model
from http.server import ThreadingHTTPServer
model.Handler.log_file = {LOG!r}
if os.path.exists("/srv/server.pem"):
    secure = ThreadingHTTPServer(("0.0.0.0", {TLS_PORT}), model.Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain("/srv/server.pem", "/srv/server.key")
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    threading.Thread(target=secure.serve_forever, daemon=True).start()
ThreadingHTTPServer(("0.0.0.0", {PORT}), model.Handler).serve_forever()
"""


@dataclass
class ModelServer:
    """The running server: `network` (the test network's name), `alias` (its name there), `url`."""

    container: Any
    network: str
    alias: str

    @property
    def url(self) -> str:
        return f"http://{self.alias}:{PORT}"

    @property
    def tls_url(self) -> str:
        return f"https://{self.alias}:{TLS_PORT}"

    def requests(self) -> list[dict[str, Any]]:
        """The requests it was sent so far."""
        import docker

        try:
            data, _ = self.container.get_archive(LOG)
        except docker.errors.NotFound:
            return []
        with tarfile.open(fileobj=io.BytesIO(b"".join(data))) as archive:
            member = archive.extractfile(archive.getmembers()[0])
            text = member.read().decode() if member else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@contextmanager
def model_server(image: str, certificate: tuple[bytes, bytes] | None = None) -> Iterator[ModelServer]:
    """A test network (label pipe.test=keyproxy) with the fake model server on it as `fake-model`,
    run from `image` (any image with python3), on PORT; with `certificate` (PEM certificate, PEM
    key), also over TLS on TLS_PORT. Removed afterwards."""
    import docker

    client = docker.from_env()
    name = f"pipe-keyproxy-test-{uuid.uuid4().hex[:8]}"
    network = client.networks.create(name, driver="bridge", labels={"pipe.test": "keyproxy"})
    container = None
    try:
        container = client.containers.create(image, ["python3", "-c", SERVE], labels={"pipe.test": "keyproxy"})
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(str(FAKE_MODEL), arcname="fake_model.py")
            for file, data in zip(("server.pem", "server.key"), certificate or (), strict=False):
                info = tarfile.TarInfo(file)
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
        container.put_archive("/srv", buffer.getvalue())
        network.connect(container, aliases=["fake-model"])
        client.networks.get("bridge").disconnect(container)  # only on the test network: not reachable from a sandbox
        container.start()
        _wait_listening(container)
        yield ModelServer(container, name, "fake-model")
    finally:
        if container is not None:
            container.remove(force=True)
        network.remove()
        client.close()


def _wait_listening(container: Any) -> None:
    deadline = time.monotonic() + 30
    probe = f"import socket; socket.create_connection(('127.0.0.1', {PORT}), 1)"
    while time.monotonic() < deadline:
        if container.exec_run(["python3", "-c", probe]).exit_code == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("the fake model server did not start: " + container.logs().decode(errors="replace"))


def certificates(directory: Path, name: str) -> tuple[bytes, bytes, bytes]:
    """A test CA and a certificate for `name` it signed, made with openssl in `directory`:
    (CA certificate, server certificate, server key), PEM."""
    import subprocess

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=pipe test CA")  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={name}"
    )
    (directory / "san.cnf").write_text(f"subjectAltName=DNS:{name}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.cnf")  # fmt: skip
    return tuple((directory / f).read_bytes() for f in ("ca.pem", "server.pem", "server.key"))  # type: ignore[return-value]
