"""One Logger and Metrics for every function, created once here (the Tracer lives in
`ftserve.tracing`: X-Ray's SDK costs ~120 ms of import, so the hot invoke path goes without it
and relies on Lambda's active tracing for its segment)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "ftserve"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="ftserve", service=SERVICE)
