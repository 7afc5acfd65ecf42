"""Built-in actions (`uses:`), one module per family, listed in ACTIONS.

The schema declares every action's `with:`; ACTIONS lists those this version can execute. A
pipeline using an action not listed here is refused before anything runs (exit 2).
"""

from __future__ import annotations

# action name -> "module:function"
ACTIONS: dict[str, str] = {}
