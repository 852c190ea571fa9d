"""Fault and race tests share the `replica` fixture from tests/conftest.py."""

from tests.conftest import STUB_BASE

__all__ = ["STUB_BASE"]
