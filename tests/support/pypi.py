"""Fetching a project's sdists from PyPI through the Simple API (PEP 503), with their hashes checked
and nothing of theirs run (unlike `pip download`, which may build them)."""

from __future__ import annotations

import difflib
import hashlib
import os
import ssl
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path


def package_index() -> str:
    """The Simple API pip itself uses: PIPE_TEST_PYPI, else pip's configured index-url, else pip's
    default (so no registry host is named here)."""
    if os.environ.get("PIPE_TEST_PYPI"):
        return os.environ["PIPE_TEST_PYPI"].rstrip("/")
    configured = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if configured:
        return configured.rstrip("/")
    from pip._internal.models.index import PyPI  # pip's own default index

    return str(PyPI.simple_url).rstrip("/")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links += [value for name, value in attrs if name == "href" and value]


def _context() -> ssl.SSLContext:
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    return ssl.create_default_context(cafile=bundle if os.path.exists(bundle) else None)


def sdist(project: str, version: str, into: Path) -> Path:
    """Download and unpack `project`'s sdist of `version` into `into`; returns the unpacked tree."""
    base = f"{package_index()}/{project}/"
    with urllib.request.urlopen(base, context=_context(), timeout=60) as response:
        parser = _Links()
        parser.feed(response.read().decode())
    name = f"{project}-{version}.tar.gz"
    href = next(link for link in parser.links if urllib.parse.urlsplit(link).path.endswith("/" + name))
    url, _, fragment = urllib.parse.urljoin(base, href).partition("#")
    with urllib.request.urlopen(url, context=_context(), timeout=120) as response:
        data = response.read()
    if fragment.startswith("sha256="):
        assert hashlib.sha256(data).hexdigest() == fragment[len("sha256=") :], f"{name}: hash mismatch"
    archive = into / name
    archive.write_bytes(data)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / f"{project}-{version}"


def tree_diff(old: Path, new: Path, skip: tuple[str, ...] = ("PKG-INFO", ".egg-info")) -> str:
    """A unified diff (a/ b/ prefixes) of the text files that differ between two trees (binary
    files are left out)."""

    def files(root: Path) -> dict[str, Path]:
        return {
            str(p.relative_to(root)): p
            for p in root.rglob("*")
            if p.is_file() and not any(part.endswith(skip) or part in skip for part in p.relative_to(root).parts)
        }

    def lines(path: Path | None) -> list[str] | None:
        try:
            return path.read_text().splitlines(keepends=True) if path is not None else []
        except UnicodeDecodeError:
            return None  # a binary file: not part of a text diff

    before, after = files(old), files(new)
    chunks: list[str] = []
    for path in sorted(set(before) | set(after)):
        a, b = lines(before.get(path)), lines(after.get(path))
        if a is None or b is None:
            continue
        if a != b:
            chunks += difflib.unified_diff(a, b, f"a/{path}" if a else "/dev/null", f"b/{path}" if b else "/dev/null")
    return "".join(chunks)
