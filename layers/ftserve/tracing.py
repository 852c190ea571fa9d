"""The Tracer for the functions off the hot path (registration, releases, reconcile)."""

from __future__ import annotations

from aws_lambda_powertools import Tracer

from ftserve.observability import SERVICE

tracer = Tracer(service=SERVICE)
