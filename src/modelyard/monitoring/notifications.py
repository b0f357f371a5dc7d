"""Telling people about alerts: a signed webhook POST, and a line in the log.

Only transitions worth hearing about are sent (``AlertTransition.notify``): an alert
starting to fire, and a firing alert resolving.

**Webhooks.** Each notification is one ``POST`` of a JSON object::

    {"version": 1, "monitor": "web-drift", "deployment": "web", "rule": "errors",
     "labels": {"variant": "blue"}, "state": "firing", "previous": "pending",
     "severity": "critical", "value": 0.05, "detail": "error_rate is 0.05, above 0.01",
     "trigger": "retrain-demand", "alert_id": 7, "fingerprint": "…",
     "started_at": 1796…, "since": 1796…, "resolved_at": null, "sent_at": 1796…}

(times in milliseconds since the epoch; ``trigger`` names the pipeline the rule asks
for, or null). When the target has a secret (``secret_env`` in the spec names the
environment variable holding it), two headers sign the request:

* ``X-Modelyard-Timestamp``: the Unix time in seconds when it was signed;
* ``X-Modelyard-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with the secret,
  of the timestamp, a ``.``, and the exact bytes of the body.

A receiver recomputes the HMAC over the body *as received* (before parsing it), compares
with ``hmac.compare_digest``, and refuses a timestamp more than a few minutes from its
clock: the timestamp is inside the signature, so a captured request cannot be replayed
later with a fresh one. ``verify_signature`` does all of it.

Delivery goes through ``http_transport.HttpTransport``: a connection error or a 429,
502, 503 or 504 answer is retried with exponential back-off and jitter (``Retry-After``
honoured), the same signed bytes each time. A target that still fails is reported in the
returned ``Delivery`` and logged; it never stops the other targets or the evaluation.

**Log.** One line per notification on the ``modelyard.monitoring.alerts`` logger:
WARNING when an alert fires (ERROR when it is critical), INFO when it resolves.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from modelyard import json_codec
from modelyard.errors import InvalidParameter, ModelyardError
from modelyard.http_transport import HttpTransport
from modelyard.ids import now_ms
from modelyard.monitoring.alerts import AlertTransition
from modelyard.monitoring.rules import MonitorSpec

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Delivery",
    "LogNotifier",
    "Notification",
    "Notifier",
    "WebhookNotifier",
    "notifiers_for",
    "notify",
    "payload",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Modelyard-Signature"
TIMESTAMP_HEADER = "X-Modelyard-Timestamp"
#: How far a receiver should accept a timestamp from its own clock, in seconds.
DEFAULT_TOLERANCE_S = 300
LOGGER = logging.getLogger("modelyard.monitoring.alerts")


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert transition of one monitor, as targets send it."""

    monitor: str
    deployment: str
    transition: AlertTransition


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one notification at one target."""

    target: str
    ok: bool
    status: int | None = None
    error: str | None = None


def payload(notification: Notification, *, sent_at: int | None = None) -> dict[str, Any]:
    """The JSON object a webhook receives (see the module's docstring)."""
    alert = notification.transition.alert
    return {
        "version": 1,
        "monitor": notification.monitor,
        "deployment": notification.deployment,
        "rule": alert.rule,
        "labels": dict(alert.labels),
        "state": notification.transition.state,
        "previous": notification.transition.previous,
        "severity": alert.severity,
        "value": alert.value,
        "detail": alert.detail,
        "trigger": alert.trigger,
        "alert_id": alert.id,
        "fingerprint": alert.fingerprint,
        "started_at": alert.started_at,
        "since": alert.since,
        "resolved_at": alert.resolved_at,
        "sent_at": now_ms() if sent_at is None else sent_at,
    }


def sign(body: bytes, secret: bytes, timestamp: int) -> str:
    """The ``X-Modelyard-Signature`` value: ``sha256=`` + HMAC-SHA256 of
    ``b"<timestamp>." + body`` keyed with ``secret``.

    >>> sign(b'{"state":"firing"}', b"s3cret", 1796540000)
    'sha256=67a86693c66b2268570639c142b108499d73d9ffa979d9e7e6251a5ebeeee7c4'
    """
    mac = hmac.new(secret, str(int(timestamp)).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    body: bytes,
    secret: bytes,
    *,
    timestamp: str | None,
    signature: str | None,
    now_s: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """What a receiver checks: the signature matches the body and timestamp, and the
    timestamp is within ``tolerance_s`` of now (a replayed request is refused)."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    now = time.time() if now_s is None else now_s
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(body, secret, int(timestamp)), signature)


class Notifier(ABC):
    """A place notifications go."""

    #: What ``Delivery.target`` says (a URL, ``log``).
    target: str

    @abstractmethod
    def send(self, notification: Notification) -> Delivery:
        """Deliver one notification; report failures instead of raising them."""

    def close(self) -> None:  # noqa: B027 - most notifiers hold nothing
        """Release connections."""


class WebhookNotifier(Notifier):
    """POSTs signed JSON to one URL, retried with back-off (``HttpTransport``)."""

    def __init__(
        self,
        url: str,
        *,
        secret: bytes | None = None,
        timeout_s: float = 10.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidParameter(
                f"webhook {url!r} must be an http:// or https:// URL", field="webhook"
            )
        self.target = url
        self.secret = secret
        self.clock_s = clock_s
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._http = HttpTransport(
            f"{parts.scheme}://{parts.netloc}",
            timeout_s=timeout_s,
            max_retries=retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
        )

    def send(self, notification: Notification) -> Delivery:
        body = json_codec.dumps(payload(notification))
        headers = {"Content-Type": "application/json"}
        if self.secret is not None:
            timestamp = int(self.clock_s())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign(body, self.secret, timestamp)
        try:
            response = self._http.request("POST", self._path, body=body, headers=headers)
        except ModelyardError as exc:
            error = f"webhook {self.target}: {exc}"
            LOGGER.warning("notification not delivered: %s", error)
            return Delivery(self.target, False, None, error)
        return Delivery(self.target, True, response.status_code)

    def close(self) -> None:
        self._http.close()


class LogNotifier(Notifier):
    """One log line per notification."""

    target = "log"

    def __init__(self, logger: logging.Logger = LOGGER) -> None:
        self.logger = logger

    def send(self, notification: Notification) -> Delivery:
        t = notification.transition
        alert = t.alert
        if t.state == "firing":
            level = logging.ERROR if alert.severity == "critical" else logging.WARNING
        else:
            level = logging.INFO
        labels = ",".join(f"{k}={v}" for k, v in alert.labels) or "-"
        self.logger.log(
            level,
            "alert %s: monitor=%s deployment=%s rule=%r labels=%s severity=%s value=%s "
            "trigger=%s: %s",
            t.state,
            notification.monitor,
            notification.deployment,
            alert.rule,
            labels,
            alert.severity,
            alert.value,
            alert.trigger or "-",
            alert.detail or "",
        )
        return Delivery(self.target, True)


def notifiers_for(
    spec: MonitorSpec, environ: Mapping[str, str], *, backoff_s: float = 0.5
) -> list[Notifier]:
    """The targets of a monitor's ``notify`` section. ``environ`` holds the secrets (the
    caller passes its environment: nothing here reads ``os.environ``); a secret_env that
    is not set is refused, naming it, rather than sending unsigned."""
    out: list[Notifier] = []
    for i, target in enumerate(spec.notify):
        if target.webhook is None:
            out.append(LogNotifier())
            continue
        secret = None
        if target.secret_env is not None:
            value = environ.get(target.secret_env)
            if not value:
                raise InvalidParameter(
                    f"notify[{i}].secret_env: the environment variable {target.secret_env!r} "
                    "is not set; it must hold the webhook's signing secret",
                    field=f"notify[{i}].secret_env",
                )
            secret = value.encode("utf-8")
        out.append(
            WebhookNotifier(
                target.webhook,
                secret=secret,
                timeout_s=target.timeout.total_seconds(),
                retries=target.retries,
                backoff_s=backoff_s,
            )
        )
    return out


def notify(
    notifiers: Sequence[Notifier],
    transitions: Iterable[AlertTransition],
    *,
    monitor: str,
    deployment: str,
) -> list[Delivery]:
    """Send each transition worth a notification to every target, in order."""
    deliveries: list[Delivery] = []
    for transition in transitions:
        if not transition.notify:
            continue
        notification = Notification(monitor, deployment, transition)
        for notifier in notifiers:
            deliveries.append(notifier.send(notification))
    return deliveries
