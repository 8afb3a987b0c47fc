"""Generative models, one self-contained module per architecture.

All of them implement :class:`echolib.models.base.GenerativeModel` and are
looked up by name through :mod:`echolib.models.registry`.
"""
