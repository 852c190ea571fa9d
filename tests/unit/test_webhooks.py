"""Standard Webhooks verification: signature, the 5-minute window, and key rotation."""

from __future__ import annotations

import base64

import pytest

from ftserve.webhooks import WebhookRejected, sign, verify

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = '{"type": "fine_tuning.job.succeeded", "data": {"id": "ftjob-1"}}'


def headers(stamp: int, secret: str = SECRET, body: str = BODY) -> dict[str, str]:
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, "msg_1", stamp, body),
    }


@pytest.mark.parametrize("age", [-300, 0, 300])
def test_a_signature_within_five_minutes_is_accepted(age: int) -> None:
    verify(SECRET, headers(1_000_000 - age), BODY, now=1_000_000)


@pytest.mark.parametrize("age", [-301, 301, 10_000])
def test_a_timestamp_outside_five_minutes_is_refused(age: int) -> None:
    with pytest.raises(WebhookRejected, match="5 minutes"):
        verify(SECRET, headers(1_000_000 - age), BODY, now=1_000_000)


def test_a_changed_body_or_another_secret_is_refused() -> None:
    with pytest.raises(WebhookRejected, match="does not match"):
        verify(SECRET, headers(1_000_000), BODY.replace("ftjob-1", "ftjob-2"), now=1_000_000)
    other = "whsec_" + base64.b64encode(b"another-secret-another-secret-!!").decode()
    with pytest.raises(WebhookRejected, match="does not match"):
        verify(SECRET, headers(1_000_000, secret=other), BODY, now=1_000_000)


def test_any_one_of_several_signatures_may_match_during_key_rotation() -> None:
    other = "whsec_" + base64.b64encode(b"another-secret-another-secret-!!").decode()
    h = headers(1_000_000)
    h["webhook-signature"] = sign(other, "msg_1", 1_000_000, BODY) + " " + h["webhook-signature"]
    verify(SECRET, h, BODY, now=1_000_000)


def test_missing_headers_are_refused() -> None:
    with pytest.raises(WebhookRejected, match="missing"):
        verify(SECRET, {}, BODY, now=1_000_000)
