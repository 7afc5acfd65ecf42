"""One module per `pipe` subcommand; each exposes a function returning the exit code."""
