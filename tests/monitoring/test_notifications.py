"""Notifications: a webhook receives signed JSON (HMAC-SHA256 over the timestamp and the
exact body), retried after a 503 with the same bytes; a wrong secret or an old timestamp
fails verification; the log gets one line; only firing and resolved-after-firing go out."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelyard.errors import InvalidParameter
from modelyard.monitoring.alerts import Alert, AlertTransition
from modelyard.monitoring.notifications import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    LogNotifier,
    WebhookNotifier,
    notifiers_for,
    notify,
    sign,
    verify_signature,
)
from modelyard.monitoring.rules import parse_rules

SECRET = b"correct horse battery staple"


def alert(state="firing", severity="critical", **extra) -> Alert:
    fields = dict(
        id=7, monitor="web-slo", rule="errors", labels=(("variant", "blue"),),
        fingerprint="f" * 64, state=state, severity=severity, value=0.05,
        detail="error_rate is 0.05, above 0.01", breaches=3, trigger="retrain-demand",
        started_at=1_000, since=2_000, updated_at=2_000, resolved_at=None,
    )  # fmt: skip
    fields.update(extra)
    return Alert(**fields)


FIRING = AlertTransition(alert(), "pending", "firing")
RESOLVED = AlertTransition(alert("resolved", value=0.0, resolved_at=3_000), "firing", "resolved")
QUIET = AlertTransition(alert("pending"), None, "pending")


class Receiver:
    """A webhook receiver on a real socket: verifies every request's signature, answers
    503 to the first ``fail_first`` attempts."""

    def __init__(self, secret: bytes, fail_first: int = 0) -> None:
        self.secret, self.fail_first = secret, fail_first
        self.attempts: list[tuple[bytes, dict[str, str]]] = []
        self.verified: list[bool] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {**dict(self.headers.items()), "path": self.path}
                receiver.attempts.append((body, headers))
                ok = verify_signature(
                    body,
                    receiver.secret,
                    timestamp=self.headers.get(TIMESTAMP_HEADER),
                    signature=self.headers.get(SIGNATURE_HEADER),
                )
                receiver.verified.append(ok)
                if len(receiver.attempts) <= receiver.fail_first:
                    status = 503
                else:
                    status = 204 if ok else 401
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts?team=ml"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_a_signed_webhook_is_retried_after_a_503_and_verifies(caplog):
    with Receiver(SECRET, fail_first=1) as receiver:
        hook = WebhookNotifier(receiver.url, secret=SECRET, backoff_s=0.01)
        try:
            [delivery] = notify([hook], [FIRING], monitor="web-slo", deployment="web")
        finally:
            hook.close()
    assert delivery.ok and delivery.status == 204 and delivery.target == receiver.url
    assert len(receiver.attempts) == 2 and receiver.verified == [True, True]
    (first, h1), (second, h2) = receiver.attempts
    assert first == second and h1[SIGNATURE_HEADER] == h2[SIGNATURE_HEADER]  # same bytes
    assert h1["path"] == "/hooks/alerts?team=ml"
    expected = hmac.new(SECRET, h1[TIMESTAMP_HEADER].encode() + b"." + first, hashlib.sha256)
    assert h1[SIGNATURE_HEADER] == "sha256=" + expected.hexdigest()
    sent = json.loads(first)
    assert {k: sent[k] for k in ("monitor", "deployment", "rule", "state", "previous")} == {
        "monitor": "web-slo", "deployment": "web", "rule": "errors", "state": "firing",
        "previous": "pending",
    }  # fmt: skip
    assert sent["labels"] == {"variant": "blue"} and sent["value"] == 0.05
    assert sent["trigger"] == "retrain-demand" and sent["severity"] == "critical"
    assert (sent["started_at"], sent["since"], sent["resolved_at"]) == (1_000, 2_000, None)


def test_a_receiver_with_another_secret_refuses_and_the_failure_is_reported(caplog):
    with Receiver(b"another secret") as receiver:
        hook = WebhookNotifier(receiver.url, secret=SECRET, backoff_s=0.01)
        try:
            [delivery] = notify([hook], [FIRING], monitor="web-slo", deployment="web")
        finally:
            hook.close()
    assert not delivery.ok and "401" in delivery.error and receiver.url in delivery.error
    assert len(receiver.attempts) == 1  # a refusal is not retried
    assert "notification not delivered" in caplog.text


def test_an_unreachable_receiver_is_reported_not_raised():
    with Receiver(SECRET) as receiver:
        url = receiver.url
    hook = WebhookNotifier(url, secret=SECRET, retries=1, backoff_s=0.01)
    try:
        [delivery] = notify([hook], [FIRING], monitor="web-slo", deployment="web")
    finally:
        hook.close()
    assert not delivery.ok and "cannot reach" in delivery.error


def test_verification_refuses_tampering_replays_and_missing_headers():
    body = b'{"state":"firing"}'
    signature = sign(body, SECRET, 1_000_000)
    ok = dict(timestamp="1000000", signature=signature, now_s=1_000_010)
    assert verify_signature(body, SECRET, **ok)
    assert not verify_signature(body + b" ", SECRET, **ok)  # the exact bytes
    assert not verify_signature(body, b"wrong", **ok)
    assert not verify_signature(body, SECRET, **{**ok, "timestamp": "1000001"})
    assert not verify_signature(body, SECRET, **{**ok, "now_s": 1_000_000 + 301})  # replayed
    assert not verify_signature(body, SECRET, **{**ok, "signature": None})
    assert not verify_signature(body, SECRET, **{**ok, "timestamp": "soon"})


def test_only_firing_and_resolved_after_firing_are_sent(caplog):
    caplog.set_level(logging.INFO, logger="modelyard.monitoring.alerts")
    cleared = AlertTransition(alert("resolved"), "pending", "resolved")
    deliveries = notify(
        [LogNotifier()], [QUIET, FIRING, cleared, RESOLVED], monitor="web-slo", deployment="web"
    )
    assert [d.ok for d in deliveries] == [True, True]
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        (
            "ERROR",
            "alert firing: monitor=web-slo deployment=web rule='errors' labels=variant=blue "
            "severity=critical value=0.05 trigger=retrain-demand: error_rate is 0.05, above 0.01",
        ),
        (
            "INFO",
            "alert resolved: monitor=web-slo deployment=web rule='errors' labels=variant=blue "
            "severity=critical value=0.0 trigger=retrain-demand: error_rate is 0.05, above 0.01",
        ),
    ]


def test_a_warning_fires_at_warning_level(caplog):
    warning = AlertTransition(alert(severity="warning"), None, "firing")
    notify([LogNotifier()], [warning], monitor="m", deployment="d")
    assert [r.levelname for r in caplog.records] == ["WARNING"]


SPEC = """
rules:
  - {name: errors, error_rate: {above: 0.01}}
notify:
  - webhook: http://127.0.0.1:9/hook
    secret_env: HOOK_SECRET
    timeout: 5s
    retries: 2
  - webhook: http://127.0.0.1:9/open
  - log: true
"""


def test_targets_come_from_the_spec_with_the_secret_from_the_given_environment():
    spec = parse_rules(SPEC)
    targets = notifiers_for(spec, {"HOOK_SECRET": "s"})
    try:
        assert [t.target for t in targets] == [
            "http://127.0.0.1:9/hook", "http://127.0.0.1:9/open", "log",
        ]  # fmt: skip
        assert targets[0].secret == b"s" and targets[1].secret is None
    finally:
        for t in targets:
            t.close()
    with pytest.raises(InvalidParameter, match="'HOOK_SECRET' is not set") as caught:
        notifiers_for(spec, {})
    assert caught.value.field == "notify[0].secret_env"


def test_an_unsigned_webhook_sends_no_signature():
    with Receiver(SECRET) as receiver:
        hook = WebhookNotifier(receiver.url, backoff_s=0.01)
        try:
            [delivery] = notify([hook], [FIRING], monitor="m", deployment="d")
        finally:
            hook.close()
    assert not delivery.ok  # this receiver insists on a signature
    assert SIGNATURE_HEADER not in receiver.attempts[0][1]


def test_a_bad_webhook_url_is_refused():
    with pytest.raises(InvalidParameter, match="http:// or https://"):
        WebhookNotifier("file:///etc/passwd")
