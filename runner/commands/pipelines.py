"""`pipe pipelines`: the pipelines shipped with pipe, which `pipe run NAME` finds from anywhere."""

from __future__ import annotations

import json
from typing import TextIO

from runner.pipeline.spec import load_pipeline
from runner.resources import shipped_pipelines
from runner.terminal import printable


def list_pipelines(out: TextIO, *, json_lines: bool = False) -> int:
    """Print each shipped pipeline's name, description and inputs; returns 0."""
    for name, path in shipped_pipelines().items():
        pipeline = load_pipeline(path)
        inputs = [f"{i.name}{'' if i.required else '?'}" for i in pipeline.inputs]
        if json_lines:
            record = {"name": name, "description": pipeline.description, "path": str(path), "inputs": inputs}
            print(json.dumps(record), file=out)
            continue
        print(f"{name:<14} {printable(pipeline.description)}", file=out)
        if inputs:
            print(f"{'':<14} inputs: {', '.join(inputs)}", file=out)
    if not json_lines:
        print("\nRun one with `pipe run NAME -i KEY=VALUE`; a local file NAME.yml wins over the shipped one.", file=out)
    return 0
