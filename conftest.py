"""Root conftest: loads the qualification plugin for `pytest qualification/` and `pytest tests/`.

The plugin has no pytest11 entry point, so installing the package never loads it into another
project's pytest run; outside this repository it is opt-in:
`pytest -p mcp_bridge_qualification.plugin`.
"""

pytest_plugins = ["qualification.plugin"]
