"""`pipe serve`: a GitHub webhook receiver that starts runs (docs/architecture.md, Layers).

Modules: config (the YAML configuration, schemas/serve.schema.json), signature
(X-Hub-Signature-256), events (what a delivery asks for, from its payload alone), dispatch
(acting on it against the store, the threads and the launcher), launcher (background `pipe`
processes), identity (pipe's own login), app (the Starlette application).
"""
