"""Root conftest: the qualification plugin is also an installed pytest11 entry point; this makes
it load from a plain checkout too."""

pytest_plugins = ["qualification.plugin"]
