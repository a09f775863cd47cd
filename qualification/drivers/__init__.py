"""Drivers: how the suite reaches a target (`--target reference|deployed|package.module:factory`).

Checks hold the checklist's meaning and speak only to `base.Target`; drivers hold the wire.
"""

from __future__ import annotations

import importlib

import pytest

from .base import (
    ANONYMOUS,
    CAPABILITIES,
    DEFAULT,
    STATUSES,
    TERMINAL,
    Client,
    Driver,
    Job,
    Problem,
    Reply,
    Target,
    Unsupported,
)

__all__ = [
    "ANONYMOUS", "CAPABILITIES", "DEFAULT", "STATUSES", "TERMINAL", "Client", "Driver", "Job",
    "Problem", "Reply", "Target", "Unsupported", "load_driver",
]  # fmt: skip


def load_driver(spec: str, config: pytest.Config) -> Driver:
    """`reference`, `deployed`, or `package.module:factory` (called with the pytest config)."""
    if spec == "reference":
        from .reference import ReferenceDriver

        return ReferenceDriver(config)
    if spec == "deployed":
        from .deployed import DeployedDriver

        return DeployedDriver.from_config(config)
    module_name, _, factory_name = spec.partition(":")
    if not factory_name:
        raise pytest.UsageError(
            f"--target {spec}: expected reference, deployed or package.module:factory"
        )
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as error:
        raise pytest.UsageError(f"--target {spec}: {error}") from None
    driver = factory(config)
    if not isinstance(driver, Driver):
        raise pytest.UsageError(f"--target {spec}: {factory_name}() returned no Driver")
    return driver
