"""The MCP servers file: which MCP servers' tools the bridge offers, in the format MCP clients use.

    {"mcpServers": {
        "demo": {"command": "python", "args": ["-m", "mcp_bridge.demo_server"], "env": {},
                 "timeout": 300, "toolTimeouts": {"sleep": 60}},
        "remote": {"url": "http://127.0.0.1:8765/mcp", "headers": {"Authorization": "Bearer …"}}
    }}

`command` servers run over stdio, `url` servers over streamable HTTP. Besides the usual keys:
`timeout` (seconds per call, default 300), `toolTimeouts` (per-tool seconds), `listTimeout` (seconds
to connect and list tools, default 10), `disabled`. The command `python` (or `python3`) means the
bridge's own interpreter. The path comes from `MCP_SERVERS_FILE` (default: the packaged
`mcp_servers.default.json`; an empty value turns MCP servers off).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mcp_bridge.config import ConfigError

ENV_VAR = "MCP_SERVERS_FILE"
DEFAULT_FILE = Path(__file__).resolve().parent.parent / "mcp_servers.default.json"
SERVER_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class ServerConfig(BaseModel):
    """One entry of `mcpServers`: a stdio command or a streamable-HTTP URL."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["stdio", "http", "streamable-http", "streamableHttp"] | None = None
    command: str | None = Field(None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = Field(None, pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(300.0, gt=0)
    tool_timeouts: dict[str, float] = Field(default_factory=dict, alias="toolTimeouts")
    list_timeout: float = Field(10.0, gt=0, alias="listTimeout")
    disabled: bool = False

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of `command` (stdio) or `url` (streamable HTTP)")
        if self.url is not None and (self.args or self.env or self.cwd):
            raise ValueError("`args`, `env` and `cwd` belong to `command` servers, not `url` ones")
        if self.command is not None and self.headers:
            raise ValueError("`headers` belongs to `url` servers, not `command` ones")
        if self.type is not None and (self.type == "stdio") != (self.command is not None):
            raise ValueError(f"`type` {self.type!r} does not match the server's `command`/`url`")
        bad = [name for name, seconds in self.tool_timeouts.items() if not seconds > 0]
        if bad:
            raise ValueError(f"toolTimeouts.{bad[0]} must be a positive number of seconds")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"

    def timeout_for(self, tool: str) -> float:
        """Seconds a call of `tool` may take before it is cancelled."""
        return self.tool_timeouts.get(tool, self.timeout)


class ServersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mcp_servers: dict[str, ServerConfig] = Field(alias="mcpServers")

    @model_validator(mode="after")
    def _names(self) -> ServersFile:
        for name in self.mcp_servers:
            if not re.match(SERVER_NAME_PATTERN, name):
                raise ValueError(
                    f"mcpServers.{name}: server names are 1-64 letters, digits, '_' or '-'"
                )
        return self


def configured_path() -> Path | None:
    """The servers file to load: `MCP_SERVERS_FILE`, else the packaged default; None when off."""
    value = os.environ.get(ENV_VAR)
    if value is None:
        return DEFAULT_FILE
    return Path(value).expanduser() if value.strip() else None


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = ".".join(str(part) for part in first.get("loc", ()))
    message = first.get("msg", "invalid").removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        message = "unknown key"
    return f"{loc}: {message}" if loc else message


def load_servers(path: Path) -> dict[str, ServerConfig]:
    """Parse the servers file; any problem raises ConfigError naming the file and the bad key."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(
            f"configuration error: {ENV_VAR}: cannot read {path}: {error.strerror or error}"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(
            f"configuration error: {ENV_VAR}: {path}: not valid JSON: {error}"
        ) from None
    try:
        parsed = ServersFile.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"configuration error: {ENV_VAR}: {path}: {_describe(error)}") from None
    return {name: server for name, server in parsed.mcp_servers.items() if not server.disabled}


def configured_servers() -> tuple[Path | None, dict[str, ServerConfig]]:
    """The configured servers file and its enabled servers ({} when MCP servers are off)."""
    path = configured_path()
    if path is None:
        return None, {}
    return path, load_servers(path)
