"""Provider webhooks through the real app: the providers' example payloads, signed in the test with each
provider's own algorithm, then billed through ``GET /v1/usage`` as the provider would bill them.

Signatures here are computed independently of ``talktime.ingest.webhooks`` (hmac, hashlib and
``cryptography`` directly, as each provider's SDK does), so a wrong implementation cannot agree with itself.
Fixtures and where each came from: ``tests/fixtures/webhooks/README.md``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)
from talktime.api import create_app
from talktime.cli.main import app as cli
from talktime.core.plausibility import Guards, Limits
from talktime.ingest.webhooks import retell, twilio
from talktime.ingest.webhooks.secrets import SECRETS_TENANT, set_secret
from talktime.store import EventStore, hash_key, open_store

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhooks"
NOW = datetime(2025, 3, 2, tzinfo=UTC)
TENANT = "acme-platform"
TWILIO_TOKEN = "twilio-auth-token-0123456789abcdef"
VAPI_SECRET = "vapi-server-secret"
RETELL_KEY = "key_retell_webhook_badge"
TELNYX_KEY = Ed25519PrivateKey.generate()
TELNYX_PUBLIC = base64.b64encode(
    TELNYX_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
).decode()


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """Every test against both event stores: the secrets and the events live in either the same way."""
    target = (
        str(tmp_path / "events.duckdb")
        if request.param == "duckdb"
        else request.getfixturevalue("postgres_url")
    )
    opened = open_store(target)
    opened.add_key(TENANT, hash_key("key-a"))
    opened.add_key("other-platform", hash_key("key-b"))
    for provider, secret in (
        ("twilio", TWILIO_TOKEN),
        ("telnyx", TELNYX_PUBLIC),
        ("vapi", VAPI_SECRET),
        ("retell", RETELL_KEY),
    ):
        set_secret(opened, TENANT, provider, secret, now=NOW)
    yield opened
    opened.close()


#: The providers' published examples date from 2023: more than the default 400 days before they are received
#: here, which the plausibility guards would hold back as a start "long ago".
OLD_EXAMPLES = Guards(Limits(max_past_days=3650))


@pytest.fixture
def client(store: EventStore) -> TestClient:
    return TestClient(create_app(store, clock=lambda: NOW, guards=OLD_EXAMPLES))


def usage(client: TestClient, policy: str, key: str = "key-a") -> dict[str, Any]:
    answer = client.get("/v1/usage", params={"policy": policy}, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    totals: dict[str, Any] = answer.json()["totals"]
    return totals


def record(client: TestClient, record_id: str, policy: str) -> dict[str, Any]:
    answer = client.get(
        f"/v1/records/{record_id}", params={"policy": policy}, headers={"Authorization": "Bearer key-a"}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


# --- Twilio: HMAC-SHA1 over URL + sorted params, base64 (twilio-python RequestValidator) ----------------


def twilio_signature(url: str, params: dict[str, str], token: str) -> str:
    signed = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def post_twilio(
    client: TestClient,
    params: dict[str, str],
    *,
    tenant: str = TENANT,
    token: str = TWILIO_TOKEN,
    signed_url: str | None = None,
) -> Any:
    path = f"/v1/webhooks/twilio/{tenant}?customer=acme"
    signature = twilio_signature(signed_url or f"http://testserver{path}", params, token)
    return client.post(
        path,
        content=urlencode(params).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )


def test_twilio_signature_matches_the_sdks_known_answer() -> None:
    vector = fixture("twilio-signature.twilio-python.json")
    params = list(vector["params"].items())
    assert twilio.signature(vector["url"], params, vector["auth_token"]) == vector["signature"]


def test_twilio_callbacks_bill_the_answered_call_as_twilio_does(client: TestClient) -> None:
    callbacks = fixture("twilio-status-callbacks.json")
    for params in callbacks:
        answer = post_twilio(client, params)
        assert answer.status_code == 200, answer.text
        assert answer.json()["records"] == ["CA1234567890ABCDE"]
    totals = usage(client, "twilio-voice")
    # CallDuration 49 s is the provider-reported seconds; Duration "1" is MINUTES, kept as an attribute
    assert (totals["records"], totals["actual_seconds"], totals["provider_reported_seconds"]) == (
        1,
        "49",
        "49",
    )
    assert (totals["billable_seconds"], totals["billable_quantity"]) == ("60", "1")
    body = record(client, "CA1234567890ABCDE", "twilio-voice")
    fields = body["fields"]
    assert (fields["started_at"], fields["answered_at"], fields["ended_at"]) == (
        "2025-03-01T10:00:00+00:00",
        "2025-03-01T10:00:06+00:00",
        "2025-03-01T10:00:55+00:00",
    )
    assert (fields["customer"], fields["kind"], fields["attr.twilio_duration_minutes"]) == (
        "acme",
        "leg",
        "1",
    )
    assert body["flags"] == []


def test_twilio_retries_and_reordered_callbacks_count_once(client: TestClient, store: EventStore) -> None:
    callbacks = fixture("twilio-status-callbacks.json")
    for params in [*reversed(callbacks), *callbacks]:  # last first, then every one retried
        assert post_twilio(client, params).status_code == 200
    totals = usage(client, "twilio-voice")
    assert (totals["records"], totals["actual_seconds"], totals["billable_seconds"]) == (1, "49", "60")
    fields = record(client, "CA1234567890ABCDE", "twilio-voice")["fields"]
    # the completed callback, first here, states the answer as Timestamp - CallDuration: the same moment
    assert (fields["answered_at"], fields["ended_at"]) == (
        "2025-03-01T10:00:06+00:00",
        "2025-03-01T10:00:55+00:00",
    )
    assert store.count(TENANT) == 4  # opened, answered, closed, reported: each stated fact stored once


def test_twilio_default_subscription_sends_only_completed_and_still_bills(client: TestClient) -> None:
    completed = fixture("twilio-status-callbacks.json")[-1]
    assert post_twilio(client, completed).status_code == 200
    totals = usage(client, "twilio-voice")
    assert (totals["actual_seconds"], totals["billable_seconds"]) == ("49", "60")


def test_twilio_child_leg_is_its_own_record_in_the_parents_session(client: TestClient) -> None:
    completed = {
        **fixture("twilio-status-callbacks.json")[-1],
        "ParentCallSid": "CAparent",
        "CallSid": "CAchild",
    }
    assert post_twilio(client, completed).json()["records"] == ["CAparent/CAchild"]
    assert record(client, "CAparent/CAchild", "twilio-voice")["fields"]["session"] == "CAparent"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"token": "another-token"}, id="wrong auth token"),
        pytest.param({"tenant": "other-platform"}, id="another tenant, no secret"),
        pytest.param(
            {"signed_url": "https://elsewhere.example/v1/webhooks/twilio/acme-platform"}, id="other URL"
        ),
    ],
)
def test_twilio_bad_signature_is_401_and_stores_nothing(
    client: TestClient, store: EventStore, tamper: dict[str, str]
) -> None:
    answer = post_twilio(client, fixture("twilio-status-callbacks.json")[-1], **tamper)
    assert answer.status_code == 401
    assert answer.json()["error"]["category"] == "unauthenticated"
    assert store.count(TENANT) == 0 and store.count("other-platform") == 0


def test_twilio_tampered_parameter_is_401(client: TestClient, store: EventStore) -> None:
    params = fixture("twilio-status-callbacks.json")[-1]
    path = f"/v1/webhooks/twilio/{TENANT}?customer=acme"
    signature = twilio_signature(f"http://testserver{path}", params, TWILIO_TOKEN)
    forged = urlencode({**params, "CallDuration": "4900"}).encode()
    answer = client.post(path, content=forged, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 401 and store.count(TENANT) == 0


def test_twilio_behind_a_proxy_verifies_against_the_public_url(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "proxied.duckdb"))
    try:
        set_secret(store, TENANT, "twilio", TWILIO_TOKEN, public_url="https://billing.example.com/", now=NOW)
        client = TestClient(create_app(store, clock=lambda: NOW))
        public = f"https://billing.example.com/v1/webhooks/twilio/{TENANT}?customer=acme"
        params = fixture("twilio-status-callbacks.json")[-1]
        assert post_twilio(client, params, signed_url=public).status_code == 200
        ported = public.replace(".com/", ".com:443/")  # Twilio may sign with the default port: accepted too
        assert post_twilio(client, params, signed_url=ported).json()["duplicate"] == 4
        assert (
            post_twilio(client, params).status_code == 401
        )  # signed for the URL the server saw: not Twilio's
    finally:
        store.close()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"CallDuration": None}, "CallDuration"),
        ({"CallDuration": "forty-nine"}, "CallDuration"),
        ({"Timestamp": "yesterday"}, "Timestamp"),
        ({"CallStatus": "exploded"}, "CallStatus"),
        ({"CallSid": None}, "CallSid"),
    ],
)
def test_twilio_missing_or_mistyped_field_is_422_naming_it(
    client: TestClient, store: EventStore, change: dict[str, str | None], field: str
) -> None:
    params = {**fixture("twilio-status-callbacks.json")[-1], **change}
    answer = post_twilio(client, {k: v for k, v in params.items() if v is not None})
    assert answer.status_code == 422
    assert f"'{field}'" in answer.json()["error"]["message"]
    assert store.count(TENANT) == 0


def test_twilio_statuses_map_to_talktime_outcomes(client: TestClient) -> None:
    base = fixture("twilio-status-callbacks.json")[-1]
    for status, expected in [
        ("no-answer", "unanswered"),
        ("busy", "busy"),
        ("failed", "failed"),
        ("canceled", "canceled"),
    ]:
        params = {
            **base,
            "CallSid": f"CA-{status}",
            "CallStatus": status,
            "CallDuration": "0",
            "Duration": "0",
        }
        assert post_twilio(client, params).status_code == 200
        assert record(client, f"CA-{status}", "twilio-voice")["status"] == expected
    assert usage(client, "twilio-voice")["billable_seconds"] == "0"  # unanswered attempts are free


# --- Telnyx: Ed25519 over "timestamp|body" (telnyx-python lib/webhook_verification.py) -----------------


def post_telnyx(
    client: TestClient, body: bytes, *, key: Ed25519PrivateKey = TELNYX_KEY, stamp: int | None = None
) -> Any:
    moment = int(NOW.timestamp()) if stamp is None else stamp
    signature = base64.b64encode(key.sign(f"{moment}|".encode() + body)).decode()
    headers = {"telnyx-signature-ed25519": signature, "telnyx-timestamp": str(moment)}
    return client.post(f"/v1/webhooks/telnyx/{TENANT}?customer=acme", content=body, headers=headers)


def redated(name: str, **payload: Any) -> bytes:
    """A Telnyx example moved to 2025 (telnyx-voice's versions start in 2020), payload fields replaced."""
    example = fixture(name)
    text = json.dumps(example).replace("2018-02-02T22:2", "2025-03-01T10:0")
    moved = json.loads(text)
    moved["data"]["payload"].update(payload)
    return json.dumps(moved).encode()


def test_telnyx_published_examples_are_accepted_as_published(client: TestClient, store: EventStore) -> None:
    hangup = (FIXTURES / "telnyx-call.hangup.developers.telnyx.com.json").read_bytes()
    cost = (FIXTURES / "telnyx-call.cost.apispec.telnyx.com.json").read_bytes()
    for body in (hangup, cost):
        answer = post_telnyx(client, body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["records"] == ["428c31b6-7af4-4bcb-b7f5-5013ef9657c1"]
    stored = {raw.id: json.loads(raw.data) for raw in store.events(TENANT)}
    leg = "428c31b6-7af4-4bcb-b7f5-5013ef9657c1"
    assert stored[f"{leg}/closed"]["status"] == "failed"  # hangup_cause call_rejected
    assert stored[f"{leg}/reported"]["seconds"] == "0"  # billed_duration_secs
    assert stored[f"{leg}/reported"]["attrs"] == {
        "telnyx_total_cost": "0",
        "telnyx_currency": "USD",
        "telnyx_cost_call_control": "0",
        "telnyx_rate_call_control": "0.001",
        "telnyx_billed_secs_call_control": "0",
    }


def test_telnyx_rejected_example_bills_nothing(client: TestClient) -> None:
    for name in ("telnyx-call.hangup.developers.telnyx.com.json", "telnyx-call.cost.apispec.telnyx.com.json"):
        assert post_telnyx(client, redated(name)).status_code == 200
    totals = usage(client, "telnyx-voice")
    assert (totals["records"], totals["billable_seconds"], totals["provider_reported_seconds"]) == (
        1,
        "0",
        "0",
    )


def telnyx_call() -> list[bytes]:
    """One answered leg from the published examples: answered 47.3 s, billed 48 s (6/6), in its webhooks."""
    hangup = redated(
        "telnyx-call.hangup.developers.telnyx.com.json",
        hangup_cause="normal_clearing",
        start_time="2025-03-01T10:00:00Z",
    )
    answered = json.loads(hangup)
    answered["data"].update(event_type="call.answered", occurred_at="2025-03-01T10:00:05Z")
    closing = json.loads(hangup)
    closing["data"]["occurred_at"] = "2025-03-01T10:00:52.3Z"
    part = {
        "billed_duration_secs": 48,
        "call_part": "call-control",
        "cost": 0.0048,
        "currency": "USD",
        "rate": 0.006,
    }
    cost = redated(
        "telnyx-call.cost.apispec.telnyx.com.json",
        billed_duration_secs=48,
        total_cost=0.0048,
        cost_parts=[part],
    )
    return [json.dumps(answered).encode(), json.dumps(closing).encode(), cost]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=str)
def test_telnyx_call_bills_as_telnyx_in_any_order_and_retries_count_once(
    client: TestClient, order: tuple[int, ...]
) -> None:
    bodies = telnyx_call()
    for index in [*order, *order]:
        assert post_telnyx(client, bodies[index]).status_code == 200
    totals = usage(client, "telnyx-voice")
    # answered 47.3 s -> 6/6 up -> 48 s, which is what Telnyx billed (billed_duration_secs, in SECONDS)
    assert (totals["records"], totals["actual_seconds"], totals["billable_seconds"]) == (1, "47.3", "48")
    assert totals["provider_reported_seconds"] == "48"
    body = record(client, "428c31b6-7af4-4bcb-b7f5-5013ef9657c1", "telnyx-voice")
    assert body["flags"] == []


@pytest.mark.parametrize(
    "how",
    [
        pytest.param({"key": Ed25519PrivateKey.generate()}, id="another key"),
        pytest.param({"stamp": int(NOW.timestamp()) - 301}, id="stale timestamp"),
    ],
)
def test_telnyx_bad_signature_is_401_and_stores_nothing(
    client: TestClient, store: EventStore, how: dict[str, Any]
) -> None:
    answer = post_telnyx(client, telnyx_call()[1], **how)
    assert answer.status_code == 401 and store.count(TENANT) == 0


def test_telnyx_missing_field_is_422_naming_it(client: TestClient, store: EventStore) -> None:
    cost = json.loads(telnyx_call()[2])
    del cost["data"]["payload"]["billed_duration_secs"]
    answer = post_telnyx(client, json.dumps(cost).encode())
    assert answer.status_code == 422
    assert "data.payload.billed_duration_secs" in answer.json()["error"]["message"]
    assert store.count(TENANT) == 0


def test_telnyx_event_types_it_does_not_meter_are_acknowledged(client: TestClient, store: EventStore) -> None:
    other = json.loads(telnyx_call()[1])
    other["data"]["event_type"] = "call.bridged"
    answer = post_telnyx(client, json.dumps(other).encode())
    assert answer.status_code == 200 and answer.json()["ignored"]
    assert store.count(TENANT) == 0


# --- Vapi: the server secret in X-Vapi-Secret (or a Bearer credential) --------------------------------


def post_vapi(client: TestClient, body: bytes, headers: dict[str, str] | None = None) -> Any:
    sent = {"X-Vapi-Secret": VAPI_SECRET} if headers is None else headers
    return client.post(f"/v1/webhooks/vapi/{TENANT}?customer=acme", content=body, headers=sent)


def test_vapi_report_becomes_a_record_per_modality_billed_as_vapi_does(client: TestClient) -> None:
    body = (FIXTURES / "vapi-end-of-call-report.sdk-shape.json").read_bytes()
    answer = post_vapi(client, body)
    assert answer.status_code == 200, answer.text
    call = "0f8a3c2e-5b1d-4e7a-9c6f-2d4b8a1e7f30"
    assert answer.json()["records"] == [call, f"{call}/llm", f"{call}/transcriber", f"{call}/tts"]
    meters = usage(client, "vapi")["meters"]
    # the call, endedAt - startedAt = 90.5 s, per second; the platform minutes (1.5083, in MINUTES) reported
    assert (
        meters["vapi-minutes"]["billable_seconds"],
        meters["vapi-minutes"]["provider_reported_seconds"],
    ) == (
        "90.5",
        "90.498",
    )
    assert meters["vapi-transcriber-minutes"]["billable_seconds"] == "90.5"
    tokens = usage(client, "openai-chat")["meters"]
    assert tokens["openai-chat-tokens-input"]["billable_quantity"] == "1225"  # 5321 prompt - 4096 cached
    assert tokens["openai-chat-tokens-cached-input"]["billable_quantity"] == "4096"
    assert tokens["openai-chat-tokens-output"]["billable_quantity"] == "210"
    assert usage(client, "elevenlabs-tts")["billable_quantity"] == "812"
    fields = record(client, call, "vapi")["fields"]
    assert (fields["attr.vapi_cost_usd"], fields["attr.vapi_transport_cost_usd"]) == ("0.1368", "0.0121")
    assert fields["attr.vapi_transport_minutes"] == "1.5083"
    assert record(client, f"{call}/transcriber", "vapi")["fields"]["attr.transcriber"] == "deepgram"


def test_vapi_bearer_credential_and_a_retry(client: TestClient, store: EventStore) -> None:
    body = (FIXTURES / "vapi-end-of-call-report.sdk-shape.json").read_bytes()
    first = post_vapi(client, body, {"Authorization": f"Bearer {VAPI_SECRET}"}).json()
    again = post_vapi(client, body).json()
    assert first["accepted"] == store.count(TENANT) and first["duplicate"] == 0
    assert (again["accepted"], again["duplicate"]) == (0, first["accepted"])


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Vapi-Secret": "guess"}, {"Authorization": "Bearer guess"}],
    ids=["none", "wrong", "bearer"],
)
def test_vapi_wrong_secret_is_401(client: TestClient, store: EventStore, headers: dict[str, str]) -> None:
    answer = post_vapi(client, (FIXTURES / "vapi-end-of-call-report.sdk-shape.json").read_bytes(), headers)
    assert answer.status_code == 401 and store.count(TENANT) == 0


def test_vapi_docs_example_lacks_the_call_id_and_is_422_naming_it(
    client: TestClient, store: EventStore
) -> None:
    answer = post_vapi(client, (FIXTURES / "vapi-end-of-call-report.docs.vapi.ai.json").read_bytes())
    assert answer.status_code == 422
    assert "message.call.id" in answer.json()["error"]["message"]
    assert store.count(TENANT) == 0


def test_vapi_tokens_of_the_wrong_type_are_422(client: TestClient) -> None:
    report = fixture("vapi-end-of-call-report.sdk-shape.json")
    report["message"]["costs"][2]["promptTokens"] = "many"
    answer = post_vapi(client, json.dumps(report).encode())
    assert answer.status_code == 422 and "message.costs[2].promptTokens" in answer.json()["error"]["message"]


def test_vapi_store_keeps_only_the_secrets_hash(store: EventStore) -> None:
    data = [raw.data for raw in store.events(SECRETS_TENANT) if '"vapi"' in raw.data]
    assert data and VAPI_SECRET not in data[0]
    assert hashlib.sha256(VAPI_SECRET.encode()).hexdigest() in data[0]


# --- Retell: x-retell-signature v=<ms>,d=HMAC-SHA256(key, body + ms) (retell-python-sdk) --------------


def retell_header(body: bytes, key: str, stamp_ms: int) -> str:
    digest = hmac.new(
        key.encode(), body.decode().encode() + str(stamp_ms).encode(), hashlib.sha256
    ).hexdigest()
    return f"v={stamp_ms},d={digest}"


def post_retell(
    client: TestClient, body: bytes, *, key: str = RETELL_KEY, stamp_ms: int | None = None
) -> Any:
    moment = int(NOW.timestamp() * 1000) if stamp_ms is None else stamp_ms
    headers = {"x-retell-signature": retell_header(body, key, moment), "Content-Type": "application/json"}
    return client.post(f"/v1/webhooks/retell/{TENANT}?customer=acme", content=body, headers=headers)


def test_retell_signature_matches_the_sdks_known_answer() -> None:
    vector = fixture("retell-signature.retell-python-sdk.json")
    expected = f"v={vector['timestamp_ms']},d={vector['digest']}"
    assert retell.signature(vector["body"].encode(), vector["api_key"], vector["timestamp_ms"]) == expected


@pytest.mark.parametrize("first", ["call_ended", "call_analyzed"])
def test_retell_call_analyzed_and_call_ended_count_once(
    client: TestClient, store: EventStore, first: str
) -> None:
    names = ["retell-call_ended.openapi-example.json", "retell-call_analyzed.openapi-example.json"]
    if first == "call_analyzed":
        names.reverse()
    answers = [post_retell(client, (FIXTURES / name).read_bytes()).json() for name in names]
    assert answers[0]["accepted"] == 3 and (answers[1]["accepted"], answers[1]["duplicate"]) == (0, 3)
    totals = usage(client, "retell")
    # Retell's example: start and end 21.522 s apart (ms epoch), duration_ms 10000 -> 10 s reported
    assert (totals["records"], totals["actual_seconds"], totals["billable_seconds"]) == (
        1,
        "21.522",
        "21.522",
    )
    assert totals["provider_reported_seconds"] == "10"
    fields = record(client, "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6", "retell")["fields"]
    assert fields["attr.retell_combined_cost_cents"] == "70"  # CENTS, as Retell reports them
    assert fields["attr.retell_cost_cents_elevenlabs_tts"] == "60"
    assert fields["started_at"] == "2023-12-23T03:33:27.333000+00:00"


def test_retell_consistent_call_bills_its_duration(client: TestClient) -> None:
    example = fixture("retell-call_ended.openapi-example.json")
    example["call"].update(start_timestamp=1740823200000, end_timestamp=1740823261500, duration_ms=61500)
    assert post_retell(client, json.dumps(example).encode()).status_code == 200
    totals = usage(client, "retell")
    assert (totals["actual_seconds"], totals["billable_seconds"], totals["provider_reported_seconds"]) == (
        "61.5",
        "61.5",
        "61.5",
    )


@pytest.mark.parametrize(
    "how",
    [
        pytest.param({"key": "another-key"}, id="another key"),
        pytest.param({"stamp_ms": int(NOW.timestamp() * 1000) - 300_001}, id="stale"),
    ],
)
def test_retell_bad_signature_is_401(client: TestClient, store: EventStore, how: dict[str, Any]) -> None:
    answer = post_retell(client, (FIXTURES / "retell-call_ended.openapi-example.json").read_bytes(), **how)
    assert answer.status_code == 401 and store.count(TENANT) == 0


def test_retell_missing_start_is_422_unless_the_call_never_connected(
    client: TestClient, store: EventStore
) -> None:
    example = fixture("retell-call_ended.openapi-example.json")
    del example["call"]["start_timestamp"]
    answer = post_retell(client, json.dumps(example).encode())
    assert answer.status_code == 422 and "call.start_timestamp" in answer.json()["error"]["message"]
    for key in ("end_timestamp", "duration_ms"):
        del example["call"][key]
    example["call"]["disconnection_reason"] = "dial_no_answer"
    answer = post_retell(client, json.dumps(example).encode())
    assert answer.status_code == 200 and answer.json()["ignored"]
    assert store.count(TENANT) == 0


def test_retell_body_that_is_not_json_is_400(client: TestClient) -> None:
    assert post_retell(client, b"{not json").status_code == 400


# --- routes, tenants and the secret CLI ---------------------------------------------------------------


def test_unknown_provider_is_404(client: TestClient) -> None:
    assert client.post(f"/v1/webhooks/plivo/{TENANT}", content=b"{}").status_code == 404


def test_a_tenants_webhooks_are_seen_only_by_that_tenant(client: TestClient) -> None:
    assert post_twilio(client, fixture("twilio-status-callbacks.json")[-1]).status_code == 200
    assert usage(client, "twilio-voice", key="key-b")["records"] == 0


def test_openapi_lists_the_webhook_route(client: TestClient) -> None:
    assert "/v1/webhooks/{provider}/{tenant}" in client.get("/openapi.json").json()["paths"]


def test_cli_sets_lists_and_removes_secrets(tmp_path: Path) -> None:
    path = str(tmp_path / "cli.duckdb")
    runner = CliRunner()
    done = runner.invoke(
        cli,
        [
            "webhooks",
            "set-secret",
            TENANT,
            "twilio",
            TWILIO_TOKEN,
            "--store",
            path,
            "--public-url",
            "https://t.example.com",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "https://t.example.com/v1/webhooks/twilio/acme-platform" in done.output
    listed = runner.invoke(cli, ["webhooks", "list", "--store", path])
    assert f"{TENANT}\ttwilio" in listed.output and TWILIO_TOKEN not in listed.output
    from_stdin = runner.invoke(
        cli, ["webhooks", "set-secret", TENANT, "retell", "-", "--store", path], input=RETELL_KEY
    )
    assert from_stdin.exit_code == 0 and RETELL_KEY not in from_stdin.output
    bad = runner.invoke(cli, ["webhooks", "set-secret", TENANT, "telnyx", "not-a-key", "--store", path])
    assert bad.exit_code == 2 and "base64" in bad.output
    assert runner.invoke(cli, ["webhooks", "remove", TENANT, "twilio", "--store", path]).exit_code == 0
    assert f"{TENANT}\ttwilio" not in runner.invoke(cli, ["webhooks", "list", "--store", path]).output
    store = open_store(path)
    try:
        client = TestClient(create_app(store, clock=lambda: NOW))
        assert post_twilio(client, fixture("twilio-status-callbacks.json")[-1]).status_code == 401
    finally:
        store.close()
