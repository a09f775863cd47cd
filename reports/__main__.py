"""``python -m reports`` entry point."""

from .cli import main

raise SystemExit(main())
