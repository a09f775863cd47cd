"""Jepsen-style chaos: history, generator, nemesis, checker, over one target adapter."""
