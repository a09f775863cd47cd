"""The tool catalog: providers contribute tools; arguments are checked against each schema.

It implements the job core's `Tools` port; `ToolContext` and `ToolError` are the core's and are
re-exported here for tool authors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from jsonschema import Draft202012Validator

from mcp_bridge.jobs.ports import ToolContext, ToolError

__all__ = [
    "ArgumentError",
    "Catalog",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolProvider",
    "UnknownTool",
]


class UnknownTool(LookupError):
    """No tool of that name is in the catalog."""


@dataclass
class ArgumentError(ValueError):
    """Arguments do not match the tool's input schema."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    run: Callable[[dict[str, Any], ToolContext], Any]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
        }


class ToolProvider(Protocol):
    """A source of tools (built-ins now; MCP servers later)."""

    def tools(self) -> Iterable[Tool]: ...


class Catalog:
    """Name → tool, with a cached JSON-schema validator per tool."""

    def __init__(self, providers: Iterable[ToolProvider]) -> None:
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, Draft202012Validator] = {}
        self._providers = list(providers)
        for provider in self._providers:
            for tool in provider.tools():
                self._add(tool)

    def _add(self, tool: Tool) -> None:
        self._validators[tool.name] = Draft202012Validator(tool.input_schema)
        self._tools[tool.name] = tool

    def __iter__(self):
        return iter(sorted(self._tools.values(), key=lambda tool: tool.name))

    def get(self, name: str) -> Tool:
        tool = self._tools.get(name)
        if tool is not None:
            return tool
        # A provider may find a tool it could not list at build time (an MCP server that was down).
        for provider in self._providers:
            resolve = getattr(provider, "resolve", None)
            tool = resolve(name) if resolve is not None else None
            if tool is not None:
                self._add(tool)
                return tool
        raise UnknownTool(name)

    def validate(self, name: str, arguments: dict[str, Any]) -> None:
        """Raise UnknownTool or ArgumentError (naming the offending field)."""
        self.get(name)
        error = next(iter(self._validators[name].iter_errors(arguments)), None)
        if error is not None:
            path = ".".join(str(part) for part in error.absolute_path)
            raise ArgumentError(f"arguments.{path}" if path else "arguments", error.message)
