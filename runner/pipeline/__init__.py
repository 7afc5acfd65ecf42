"""Pipelines as definitions: loading a file into validated, frozen records (spec, yamlsafe,
validation, model), and what is computed from them before and during a run without touching a
sandbox (inputs, secrets, expressions, plan). A layer below the engine: see docs/architecture.md."""
