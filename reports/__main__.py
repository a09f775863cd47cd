"""``python -m reports`` entry point."""

from reports.cli import main

raise SystemExit(main())
