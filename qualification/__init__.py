"""The release-qualification suite for the MCP bridge (a pytest plugin plus checks)."""
