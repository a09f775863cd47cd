"""The tool catalog: providers contribute tools; arguments are checked against each schema."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from jsonschema import Draft202012Validator


class ToolError(Exception):
    """A tool failed; the message becomes the job's error."""


class UnknownTool(LookupError):
    """No tool of that name is in the catalog."""


@dataclass
class ArgumentError(ValueError):
    """Arguments do not match the tool's input schema."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class ToolContext:
    """What a running tool may ask of its executor."""

    job_id: str
    cancelled: threading.Event = field(default_factory=threading.Event)


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


def default_catalog() -> Catalog:
    """Built-in tools, plus the MCP servers file's tools (`MCP_SERVERS_FILE`) as `server.tool`."""
    from mcp_bridge.tools.builtin import BuiltinTools
    from mcp_bridge.tools.mcp_provider import mcp_tools

    mcp = mcp_tools()
    return Catalog([BuiltinTools()] if mcp is None else [BuiltinTools(), mcp])
