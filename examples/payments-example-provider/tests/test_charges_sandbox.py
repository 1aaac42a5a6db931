"""ExampleCharges' sandbox over loopback: a create never refuses a repeat, the list pages newest
first, the search finds every charge carrying a reference."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from payments_example import charges_wire as wire
from payments_example.charges_sandbox import ChargesSandbox, serve_charges

from payments_core.testing.sandbox import RunningSandbox


@pytest.fixture
def running() -> Iterator[RunningSandbox[ChargesSandbox]]:
    with serve_charges() as served:
        yield served


@pytest.fixture
def api(running: RunningSandbox[ChargesSandbox]) -> Iterator[httpx.Client]:
    headers = {wire.HEADER_KEY: running.settings["api_key"]}
    with httpx.Client(base_url=running.base_url, headers=headers) as client:
        yield client


def create(api: httpx.Client, reference: str) -> dict[str, Any]:
    body = {
        "pricing": {"amount": "1.00", "currency": "USD"},
        "metadata": {wire.METADATA_REFERENCE: reference},
        "callback_url": "https://merchant.example/callback",
    }
    answer = api.post(wire.PATH_CHARGES, content=json.dumps(body))
    assert answer.status_code == 201, answer.text
    charge: dict[str, Any] = answer.json()["data"]
    return charge


def test_the_list_pages_newest_first_and_the_search_sees_every_charge(
    api: httpx.Client,
) -> None:
    made = [create(api, f"r-{index}")["id"] for index in range(45)]
    again = create(api, "r-0")  # nothing refuses a repeated reference: a second charge
    newest_first = [again["id"], *reversed(made)]
    seen: list[str] = []
    query: dict[str, str | int] = {"limit": 20}
    while True:
        page = api.get(wire.PATH_CHARGES, params=query).json()
        seen.extend(charge["id"] for charge in page["data"])
        if not page["has_more"]:
            break
        query = {"limit": 20, "starting_after": seen[-1]}
    assert seen == newest_first
    found = api.get(wire.PATH_SEARCH, params={"metadata_reference": "r-0"}).json()["data"]
    assert [charge["id"] for charge in found] == [again["id"], made[0]]


def test_a_wrong_key_is_refused(running: RunningSandbox[ChargesSandbox]) -> None:
    with httpx.Client(base_url=running.base_url) as client:
        answer = client.get(wire.PATH_CHARGES, headers={wire.HEADER_KEY: "wrong"})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unknown_key"
