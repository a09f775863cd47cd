"""`python -m mcp_bridge.benchmarking`."""

from mcp_bridge.benchmarking.cli import main

raise SystemExit(main())
