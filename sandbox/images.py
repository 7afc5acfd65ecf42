"""The default sandbox image: built from Dockerfile.sandbox, tagged by a hash of the file."""

from __future__ import annotations

import hashlib
import os

DEFAULT_IMAGE = "pipe-sandbox"


def dockerfile_bytes() -> bytes:
    """The shipped Dockerfile.sandbox."""
    from runner.resources import data_path

    return data_path("Dockerfile.sandbox").read_bytes()


def default_image_tag() -> str:
    """`pipe-sandbox:<12 hex>`: changes whenever the Dockerfile or PIPE_SANDBOX_BASE does."""
    digest = hashlib.sha256(dockerfile_bytes())
    digest.update(os.environ.get("PIPE_SANDBOX_BASE", "").encode())
    return f"{DEFAULT_IMAGE}:{digest.hexdigest()[:12]}"
