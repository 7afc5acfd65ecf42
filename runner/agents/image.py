"""Agent images: the default sandbox image plus named agent CLIs from their registries, at the
versions their modules pin (runner/agents/). Multi-stage: npm packages are installed in a stage
with Debian's Node.js and only their native binaries are copied out; aider gets its own venv.

The build honours the person's CA bundle (copied into the build stages only, for intercepted TLS)
and the host's registry settings (npm's `registry`, pip's `index-url`/`extra-index-url` when they
are http(s) addresses), passed as build arguments, never named here. The image is tagged
`pipe-agents:<12 hex>` from a hash of the Dockerfile, the base image id and the extra files, so an
unchanged request reuses the image.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Sequence

from runner.agents import NODE_VERSION, AgentSpec, lookup

REPOSITORY = "pipe-agents"
NPM_STAGE = """\
FROM ${BASE} AS npm
USER root
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
COPY build-ca.pem /tmp/build-ca.pem
RUN cat /etc/ssl/certs/ca-certificates.crt /tmp/build-ca.pem > /etc/pipe-build-ca.pem
ARG NPM_CONFIG_REGISTRY
ENV npm_config_cafile=/etc/pipe-build-ca.pem NODE_EXTRA_CA_CERTS=/etc/pipe-build-ca.pem npm_config_fund=false
RUN if [ -n "$NPM_CONFIG_REGISTRY" ]; then export npm_config_registry="$NPM_CONFIG_REGISTRY"; fi \\
 && npm install --prefix /opt/npm --ignore-scripts --omit=dev {packages}
RUN mkdir -p /opt/agents/bin{copies}
"""
PIP_STAGE = """\
FROM ${BASE} AS pip
USER root
COPY build-ca.pem /tmp/build-ca.pem
RUN cat /etc/ssl/certs/ca-certificates.crt /tmp/build-ca.pem > /etc/pipe-build-ca.pem
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ENV PIP_CERT=/etc/pipe-build-ca.pem PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/{name} && /opt/{name}/bin/pip install {package}=={version}
"""


def _npm_copy(spec: AgentSpec) -> str:
    """Shell lines putting an npm agent under /opt/agents/NAME with a command in /opt/agents/bin:
    a native binary (with the files shipped beside it, the glibc build when there is one), or a
    Node.js CLI run by the image's Node.js runtime."""
    package = spec.package.removeprefix("npm:")
    target = f"/opt/agents/{spec.name}"
    if spec.node_entry is not None:
        script = f'#!/bin/sh\\nexec /opt/agents/node/bin/node {target}/{spec.node_entry} "$@"\\n'
        return (
            f" \\\n && mkdir -p {target} && cp -a /opt/npm/node_modules/{package}/. {target}/"
            f" && printf '{script}' > /opt/agents/bin/{spec.name} && chmod 755 /opt/agents/bin/{spec.name}"
        )
    find = f"find /opt/npm/node_modules -path '*linux*' -type f -name {spec.binary} -perm -u+x"
    return (
        f' \\\n && found=$( ({find} | grep -v musl; {find} | grep musl) | head -n 1) && test -n "$found"'
        f' \\\n && home=$(dirname "$found") && if [ "$(basename "$home")" = bin ]; then home=$(dirname "$home"); fi'
        f' \\\n && mkdir -p {target} && cp -a "$home"/. {target}/'
        f' && ln -s "{target}${{found#$home}}" /opt/agents/bin/{spec.name}'
    )


NODE_RUNTIME = (
    " \\\n && case $(uname -m) in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac"
    " \\\n && npm install --prefix /opt/node-package --ignore-scripts node-linux-$arch@{version}"
    " \\\n && mkdir -p /opt/agents/node/bin"
    " && cp /opt/node-package/node_modules/node-linux-$arch/bin/node /opt/agents/node/bin/node"
)


def dockerfile(specs: Sequence[AgentSpec]) -> str:
    """The Dockerfile installing `specs` FROM the build argument BASE. Raises ValueError for an
    agent pipe cannot install (no package)."""
    npm = [spec for spec in specs if spec.package.startswith("npm:")]
    pip = [spec for spec in specs if spec.package.startswith("pip:")]
    for spec in specs:
        if spec.name == "pipe-patch-agent":
            raise ValueError("pipe-patch-agent is already in the default sandbox image (pipe-sandbox)")
        if spec not in npm and spec not in pip:
            raise ValueError(
                f"pipe image build cannot install agent {spec.name!r} yet; install it in an image of your own "
                "FROM pipe-sandbox and pass it with --sandbox-image"
            )
    parts = ["ARG BASE=pipe-sandbox"]
    if npm:
        packages = " ".join(f"{spec.package.removeprefix('npm:')}@{spec.version}" for spec in npm)
        copies = "".join(_npm_copy(spec) for spec in npm)
        if any(spec.node_entry for spec in npm):
            copies = NODE_RUNTIME.replace("{version}", NODE_VERSION) + copies
        parts.append(NPM_STAGE.replace("{packages}", packages).replace("{copies}", copies))
    for spec in pip:
        package = spec.package.removeprefix("pip:")
        parts.append(
            PIP_STAGE.replace(" AS pip", f" AS pip-{spec.name}")
            .replace("{name}", spec.name)
            .replace("{package}", package)
            .replace("{version}", spec.version)
        )
    final = ["FROM ${BASE}", "USER root"]
    if npm:
        final.append("COPY --from=npm /opt/agents/ /opt/agents/")
    for spec in pip:
        final.append(f"COPY --from=pip-{spec.name} /opt/{spec.name}/ /opt/{spec.name}/")
    links = [f"ln -s /opt/agents/bin/{spec.name} /usr/local/bin/{spec.name}" for spec in npm]
    links += [f"ln -s /opt/{spec.name}/bin/{spec.argv[0]} /usr/local/bin/{spec.argv[0]}" for spec in pip]
    final.append("RUN " + " && ".join(links))
    labels = " ".join(f'org.pipe.agent.{spec.name}="{spec.version}"' for spec in specs)
    final += [f"LABEL {labels}", "USER pipe", ""]
    parts.append("\n".join(final))
    return "\n".join(parts)


def registry_args() -> dict[str, str]:
    """Build arguments carrying the host's registry settings: the environment's, else what the
    host's npm and pip clients are configured with (http(s) addresses only: a local path on the
    host means nothing inside a build)."""
    found: dict[str, str] = {}
    for name in ("NPM_CONFIG_REGISTRY", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        value = os.environ.get(name) or os.environ.get(name.lower())
        if value:
            found[name] = value
    if "NPM_CONFIG_REGISTRY" not in found and shutil.which("npm"):
        asked = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True, check=False)
        found["NPM_CONFIG_REGISTRY"] = asked.stdout.strip() if asked.returncode == 0 else ""
    pip_keys = {"PIP_INDEX_URL": "index-url", "PIP_EXTRA_INDEX_URL": "extra-index-url"}
    for name, key in pip_keys.items():
        if name not in found:
            asked = subprocess.run(
                ["python3", "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
            )
            for line in asked.stdout.splitlines():
                setting, _, value = line.partition("=")
                if setting.endswith("." + key):
                    found[name] = value.strip().strip("'\"")
    return {name: value for name, value in found.items() if value.startswith(("http://", "https://"))}


def context(text: str, ca_pem: bytes) -> bytes:
    """The build context: the Dockerfile and the CA bundle for the build stages (may be empty)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (("Dockerfile", text.encode()), ("build-ca.pem", ca_pem)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def image_tag(text: str, base_id: str, extra: bytes = b"") -> str:
    """`pipe-agents:<12 hex>` for this Dockerfile on this base image (and extra context)."""
    digest = hashlib.sha256(text.encode() + b"\0" + base_id.encode() + b"\0" + extra)
    return f"{REPOSITORY}:{digest.hexdigest()[:12]}"


def build(
    names: Sequence[str],
    base: str,
    ca_pem: bytes,
    progress: Callable[[str], None],
    extra: Callable[[str], str] | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> str:
    """Build (unless present) the image with the agents `names` FROM `base`; returns its tag.
    `extra(dockerfile)` may append instructions and `extra_files` add context files (tests add
    their stand-ins this way). Raises KeyError/ValueError for unknown or uninstallable agents and
    RuntimeError with the build's last lines when it fails."""
    import docker

    specs = [lookup(name) for name in dict.fromkeys(names)]
    text = dockerfile(specs)
    if extra is not None:
        text = extra(text)
    files = dict(extra_files or {})
    client = docker.from_env(timeout=600)
    try:
        base_id = str(client.images.get(base).id)
        blob = b"".join(name.encode() + b"\0" + data for name, data in sorted(files.items()))
        tag = image_tag(text, base_id, blob)
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        buffer = io.BytesIO(context(text, ca_pem))
        with tarfile.open(fileobj=buffer, mode="a") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o755
                archive.addfile(info, io.BytesIO(data))
        lines: list[str] = []
        for chunk in client.api.build(
            fileobj=io.BytesIO(buffer.getvalue()),
            custom_context=True,
            tag=tag,
            buildargs={"BASE": base, **registry_args()},
            rm=True,
            forcerm=True,
            decode=True,
        ):
            if "stream" in chunk:
                for line in str(chunk["stream"]).splitlines():
                    if line.strip():
                        lines.append(line)
                        progress(line)
            if "error" in chunk:
                raise RuntimeError("\n".join([*lines[-15:], str(chunk["error"])]))
        client.images.get(tag)
        return tag
    finally:
        client.close()
