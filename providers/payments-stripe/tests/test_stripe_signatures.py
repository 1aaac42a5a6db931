"""The ``Stripe-Signature`` scheme on its own: the header we sign with, every reason a header is
refused (said without repeating a signature), and the edges of the length cap and the clock
tolerance. The gaps a mutation run of ``signatures.py`` found (docs/mutation.md)."""

from __future__ import annotations

import pytest
from payments_stripe import wire
from payments_stripe.signatures import SignatureRefused, sign, signature_header, verify

SECRET = "whsec_test_secret"
BODY = b'{"id": "evt_1", "type": "checkout.session.completed"}'
T = 1_700_000_000


def refusal(header: str, *, now: float = T, secret: str = SECRET) -> str:
    with pytest.raises(SignatureRefused) as caught:
        verify(header, BODY, secret, now=now)
    return str(caught.value)


def test_the_header_signs_the_body_at_its_time_with_every_secret_in_use() -> None:
    header = signature_header(["old", "new"], T, BODY)
    assert header == f"t={T},v1={sign('old', T, BODY)},v1={sign('new', T, BODY)}"
    assert verify(header, BODY, "old", now=T) == T
    assert verify(header, BODY, "new", now=T) == T
    assert refusal(header, secret="other") == "no v1 signature matches the webhook secret"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "Stripe-Signature header missing"),
        ("v1=" + "a" * 2050, "Stripe-Signature header too long"),
        (f"v1={sign(SECRET, T, BODY)}", "the signature's timestamp is missing or malformed"),
        (f"t={T}", "no v1 signature in the header"),
        (f"t={T},v0={sign(SECRET, T, BODY)}", "no v1 signature in the header"),
    ],
)
def test_each_refusal_says_what_was_wrong(header: str, reason: str) -> None:
    assert refusal(header) == reason


def test_a_signature_at_the_edge_of_the_tolerance_is_accepted_and_one_past_it_refused() -> None:
    header = signature_header([SECRET], T, BODY)
    edge = wire.TOLERANCE_SECONDS
    assert verify(header, BODY, SECRET, now=T + edge) == T
    assert verify(header, BODY, SECRET, now=T - edge) == T
    assert refusal(header, now=T + edge + 1) == (
        f"the signature's timestamp is more than {edge} s from now"
    )


def test_a_header_of_exactly_the_longest_length_is_read() -> None:
    header = signature_header([SECRET], T, BODY) + ",x="
    header += "a" * (2048 - len(header))
    assert len(header) == 2048
    assert verify(header, BODY, SECRET, now=T) == T
    assert refusal(header + "a") == "Stripe-Signature header too long"


def test_a_second_timestamp_item_is_refused_even_with_a_stray_equals_sign() -> None:
    header = signature_header([SECRET], T, BODY) + f",t={T}="
    assert refusal(header) == "the signature's timestamp is missing or malformed"
