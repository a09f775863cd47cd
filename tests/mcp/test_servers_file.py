"""The MCP servers file: the format MCP clients use, and one clear line for every mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_bridge.config import ConfigError
from mcp_bridge.tools.mcp_servers import (
    DEFAULT_FILE,
    ENV_VAR,
    configured_path,
    configured_servers,
    load_servers,
)


def write(tmp_path: Path, body: object) -> Path:
    path = tmp_path / "servers.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


def error_line(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_servers(path)
    line = str(caught.value.code)
    assert "\n" not in line
    assert line.startswith(f"configuration error: {ENV_VAR}: ")
    return line


def test_stdio_and_http_servers_parse(tmp_path):
    path = write(
        tmp_path,
        {
            "mcpServers": {
                "local": {
                    "command": "python",
                    "args": ["-m", "x"],
                    "env": {"A": "1"},
                    "toolTimeouts": {"sleep": 2.5},
                },
                "remote": {
                    "url": "http://127.0.0.1:9/mcp",
                    "headers": {"Authorization": "Bearer t"},
                    "timeout": 7,
                },
                "off": {"command": "nothing", "disabled": True},
            }
        },
    )
    servers = load_servers(path)
    assert set(servers) == {"local", "remote"}
    assert servers["local"].transport == "stdio"
    assert servers["local"].timeout_for("sleep") == 2.5
    assert servers["local"].timeout_for("echo") == 300
    assert servers["remote"].transport == "http"
    assert servers["remote"].timeout_for("anything") == 7
    assert servers["remote"].headers == {"Authorization": "Bearer t"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{not json", "not valid JSON"),
        ({"servers": {}}, "mcpServers"),
        ({"mcpServers": {"a": {"command": "x", "argz": []}}}, "mcpServers.a.argz"),
        ({"mcpServers": {"a": {}}}, "exactly one of `command`"),
        ({"mcpServers": {"a": {"command": "x", "url": "http://h/mcp"}}}, "exactly one of"),
        ({"mcpServers": {"a": {"url": "ftp://h/mcp"}}}, "mcpServers.a.url"),
        ({"mcpServers": {"a": {"url": "http://h/mcp", "args": ["x"]}}}, "belong to `command`"),
        ({"mcpServers": {"a": {"command": "x", "headers": {"A": "b"}}}}, "belongs to `url`"),
        ({"mcpServers": {"a": {"command": "x", "timeout": 0}}}, "mcpServers.a.timeout"),
        ({"mcpServers": {"a": {"command": "x", "toolTimeouts": {"t": -1}}}}, "toolTimeouts.t"),
        ({"mcpServers": {"a": {"command": "x", "env": {"A": 1}}}}, "mcpServers.a.env.A"),
        ({"mcpServers": {"a.b": {"command": "x"}}}, "mcpServers.a.b: server names"),
        ({"mcpServers": {"a": {"type": "stdio", "url": "http://h/mcp"}}}, "`type`"),
    ],
)
def test_mistakes_are_one_line_naming_file_and_key(tmp_path, body, expected):
    path = write(tmp_path, body)
    line = error_line(path)
    assert str(path) in line
    assert expected in line


def test_missing_file_is_named(tmp_path):
    line = error_line(tmp_path / "absent.json")
    assert "absent.json" in line and "cannot read" in line


def test_env_var_selects_the_file_and_empty_turns_mcp_off(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert configured_path() == DEFAULT_FILE
    path = write(tmp_path, {"mcpServers": {}})
    monkeypatch.setenv(ENV_VAR, str(path))
    assert configured_servers() == (path, {})
    monkeypatch.setenv(ENV_VAR, "")
    assert configured_servers() == (None, {})


def test_the_packaged_default_runs_the_demo_server_over_stdio():
    servers = load_servers(DEFAULT_FILE)
    assert list(servers) == ["demo"]
    assert servers["demo"].command == "python"
    assert servers["demo"].args == ["-m", "mcp_bridge.demo_server"]
