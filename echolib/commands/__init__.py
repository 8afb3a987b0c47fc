"""Subcommands of ``python -m echolib`` (see :mod:`echolib.cli`)."""
