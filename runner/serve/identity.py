"""pipe's own login on GitHub, so that `pipe serve` never reacts to what it caused: the
configuration's `github.bot`, else the token's user (`GET /user`)."""

from __future__ import annotations

from runner.errors import UsageError
from runner.serve.config import ServeConfig


def bot_login(config: ServeConfig) -> str:
    """The configured bot login, else the login the token belongs to (one request to the API).
    Raises UsageError when there is neither a configured login nor a token GitHub accepts."""
    if config.bot:
        return config.bot
    if not config.token:
        raise UsageError(f"{config.path}: github.bot is not set and there is no token to look it up with")
    import github

    client = github.Github(auth=github.Auth.Token(config.token), base_url=config.api_url, retry=None, timeout=30)
    try:
        return str(client.get_user().login)
    except github.GithubException as error:
        raise UsageError(
            f"cannot look up the bot's login with the token (GET {config.api_url}/user): {error}"
        ) from None
    finally:
        client.close()
