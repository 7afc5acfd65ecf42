"""The command-line options several `pipe` commands share, and the small helpers that turn them into
what the commands take (the state directory, a store, forge settings, a terminal-safe stdout).

runner/cli.py only wires commands to these and to runner/commands/*; nothing here imports a heavy
module at import time, so `pipe --help` starts fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from runner.forges import FORGES

if TYPE_CHECKING:
    from runner.store import Store

F = TypeVar("F", bound=Callable[..., Any])


def state_option(command: F) -> F:
    """`--state-dir DIR` (default: $PIPE_HOME, else ./.pipe)."""
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where runs are stored (default: $PIPE_HOME, else ./.pipe).",
    )(command)


def store_url_option(command: F) -> F:
    """`--store-url URL` (env PIPE_STORE_URL), a global option of `pipe`: the database of the store
    (runner/store/engines.py). Set for the process, so every store it opens, and every `pipe` it
    starts, uses it."""

    def remember(_context: click.Context, _parameter: click.Parameter, value: str | None) -> str | None:
        if value:
            os.environ["PIPE_STORE_URL"] = value
        return value

    return click.option(
        "--store-url",
        envvar="PIPE_STORE_URL",
        metavar="URL",
        expose_value=False,
        is_eager=True,
        callback=remember,
        help="The store's database: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB "
        "(env PIPE_STORE_URL; default: state.db in the state directory).",
    )(command)


def json_option(command: F) -> F:
    """`--json`: machine-readable output, one JSON object a line (the parameter `json_lines`)."""
    return click.option("--json", "json_lines", is_flag=True, help="Machine-readable output (JSON lines).")(command)


def secret_options(command: F) -> F:
    """What the person running pipe gives from the host: `--secret-file FILE` (repeatable),
    `--token-file FILE`, `--ca-bundle FILE` and `--host-root LOCAL=HOST`."""
    command = click.option(
        "--host-root",
        envvar="PIPE_HOST_ROOT",
        metavar="LOCAL=HOST[,...]",
        help="When pipe runs in a container: where its paths are on the Docker engine's host (env PIPE_HOST_ROOT).",
    )(command)
    command = click.option(
        "--ca-bundle",
        envvar="PIPE_CA_BUNDLE",
        type=click.Path(dir_okay=False, path_type=Path),
        help="PEM certificates every sandbox trusts (checked, then copied in; env PIPE_CA_BUNDLE).",
    )(command)
    command = click.option(
        "--secret-file",
        "secret_files",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="A NAME=value file of secrets (repeatable; overrides the environment).",
    )(command)
    return click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Read the GitHub token from this file instead of GITHUB_TOKEN / GH_TOKEN.",
    )(command)


def forge_options(command: F) -> F:
    """Where issues and pull requests live: --forge, --forge-dir, --repo, --api-url, and acting as a
    GitHub App: --github-app-id, --github-app-key-file (see `forge_settings`)."""
    for option in reversed(
        [
            click.option(
                "--forge",
                "forge_kind",
                type=click.Choice(list(FORGES)),
                envvar="PIPE_FORGE",
                help="github (the REST API) or local (a directory; see --forge-dir). Default: local when "
                "--forge-dir is given, else github.",
            ),
            click.option(
                "--forge-dir",
                type=click.Path(file_okay=False, path_type=Path),
                envvar="PIPE_FORGE_DIR",
                help="The local forge: a directory with repo.git and issues/*.md.",
            ),
            click.option(
                "--repo",
                "repo",
                metavar="OWNER/NAME",
                help="The GitHub repository (default: the `repo` input, else GITHUB_REPOSITORY).",
            ),
            click.option(
                "--api-url",
                metavar="URL",
                help="GitHub's API (default: GITHUB_API_URL, else https://api.github.com; GitHub Enterprise: "
                "https://HOST/api/v3).",
            ),
            click.option(
                "--github-app-id",
                envvar="PIPE_GITHUB_APP_ID",
                metavar="ID",
                help="Act as this GitHub App's installation on the repository: its token makes pushes run the "
                "repository's workflows (env PIPE_GITHUB_APP_ID; the private key from the secret "
                "GITHUB_APP_PRIVATE_KEY or --github-app-key-file).",
            ),
            click.option(
                "--github-app-key-file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="The GitHub App's private key (PEM) for --github-app-id.",
            ),
        ]
    ):
        command = option(command)
    return command


def forge_settings(
    forge_kind: str | None,
    forge_dir: Path | None,
    repo: str | None,
    api_url: str | None,
    github_app_id: str | None = None,
    github_app_key_file: Path | None = None,
) -> dict[str, str]:
    """The forge settings (`runner.forges.open_forge`) the forge options give: `forge` (local when a
    directory is given, else github) and, when given, `directory` (absolute), `repo`, `api_url`,
    `app_id` and `app_key_file` (absolute)."""
    kind = forge_kind or ("local" if forge_dir else "github")
    settings = {"forge": kind}
    if forge_dir:
        settings["directory"] = str(forge_dir.resolve())
    if repo:
        settings["repo"] = repo
    if api_url:
        settings["api_url"] = api_url
    if github_app_id:
        settings["app_id"] = github_app_id
    if github_app_key_file:
        settings["app_key_file"] = str(github_app_key_file.resolve())
    return settings


def state_dir_of(state_dir: Path | None) -> Path:
    """The state directory `--state-dir` names, else $PIPE_HOME, else ./.pipe."""
    from runner.statedir import default_state_dir

    return default_state_dir(state_dir)


def open_store(state_dir: Path | None) -> Store:
    """The store of the state directory `--state-dir` names (see `state_dir_of`)."""
    from runner.store import Store

    return Store(state_dir_of(state_dir))


def shown(out: TextIO) -> Any:
    """`out` for a person: terminal control sequences in what steps wrote are made visible."""
    from runner.terminal import PrintableWriter

    return PrintableWriter(out)
