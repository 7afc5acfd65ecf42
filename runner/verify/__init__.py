"""Verification: a project's own conventions for setting up and checking it (conventions), which
checks `verify` runs and how their results are read (verification), and the host directory those
results are read back from without trusting it (resultsdir). See docs/architecture.md."""
