"""Where alerts go: the log, a JSON webhook, a Slack incoming webhook.

A sink's :meth:`~Sink.send` never raises for a failed delivery: it returns a
:class:`SinkOutcome` saying what happened, so one unreachable receiver cannot stop the
monitor loop (and :class:`~ctloop.monitoring.alerts.AlertManager` also catches whatever a
custom sink raises). The webhook sinks retry a delivery that failed on the network, with a
5xx or with 429, after a short backoff; a 4xx other than 429 is not retried, since sending
the same body again cannot help.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from ctloop.errors import InvalidInput, MissingExtraError

if TYPE_CHECKING:
    from ctloop.monitoring.alerts import Alert

__all__ = ["LogSink", "Sink", "SinkOutcome", "SlackSink", "WebhookSink", "sinks_from_config"]

logger = logging.getLogger(__name__)

#: Status codes a retry can cure: the receiver is overloaded or briefly broken.
_RETRYABLE = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class SinkOutcome:
    """What one sink did with one alert.

    Attributes:
        sink: the sink's name (a webhook shows scheme and host only: the path of a Slack
            webhook URL is its secret).
        ok: whether the alert was delivered.
        attempts: deliveries tried (1 for the log).
        status: the HTTP status of the last answer, None without one.
        error: why it failed, None when it did not.
    """

    sink: str
    ok: bool
    attempts: int = 1
    status: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Sink(Protocol):
    """Anything with a ``name`` and a ``send(alert) -> SinkOutcome``."""

    name: str

    def send(self, alert: Alert) -> SinkOutcome: ...


class LogSink:
    """Writes each alert to Python logging: ``warning`` alerts at WARNING, ``critical``
    at CRITICAL, with the alert's fields in ``extra={"alert": {...}}``."""

    def __init__(self, logger_name: str = "ctloop.alerts") -> None:
        self.logger = logging.getLogger(logger_name)
        self.name = f"log({logger_name})"

    def send(self, alert: Alert) -> SinkOutcome:
        level = logging.CRITICAL if alert.severity == "critical" else logging.WARNING
        self.logger.log(
            level,
            "[%s] %s (alert %s)",
            alert.severity,
            alert.message,
            alert.id,
            extra={"alert": alert.to_dict()},
        )
        return SinkOutcome(self.name, ok=True)


class WebhookSink:
    """POSTs each alert as JSON (:meth:`Alert.to_dict`) to a URL.

    Args:
        url: an ``http://`` or ``https://`` URL.
        headers: extra request headers (e.g. ``Authorization``).
        timeout: seconds per attempt.
        attempts: deliveries to try in all (at least 1).
        backoff: seconds to wait before the second attempt, doubled before each later one.
        sleep: what waits (injectable so tests need not).

    Raises:
        InvalidInput: a URL that is not http(s), or attempts < 1.
        MissingExtraError: httpx is not installed (``pip install 'ctloop[server]'``).
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        *,
        attempts: int = 2,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(f"webhook url {url!r} is not an http:// or https:// URL")
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidInput(f"attempts={attempts!r} must be a whole number of at least 1")
        if timeout <= 0 or backoff < 0:
            raise InvalidInput(f"timeout={timeout!r} must be > 0 and backoff={backoff!r} >= 0")
        try:
            import httpx
        except ImportError as exc:
            raise MissingExtraError("httpx", "server", "webhook alert sinks") from exc
        self._httpx = httpx
        self.url = url
        self.headers = {"User-Agent": "ctloop-alerts", **(headers or {})}
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._sleep = sleep
        self.name = f"{self._label}({parts.scheme}://{parts.netloc})"

    _label = "webhook"

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON body sent for ``alert``."""
        return alert.to_dict()

    def send(self, alert: Alert) -> SinkOutcome:
        body = self.payload(alert)
        status: int | None = None
        error: str | None = None
        attempt = 0
        with self._httpx.Client(timeout=self.timeout, headers=self.headers) as http:
            for attempt in range(1, self.attempts + 1):
                if attempt > 1:
                    self._sleep(self.backoff * 2 ** (attempt - 2))
                try:
                    response = http.post(self.url, json=body)
                except self._httpx.HTTPError as exc:
                    status, error = None, f"{type(exc).__name__}: {exc}"
                    continue
                status = response.status_code
                if response.is_success:
                    return SinkOutcome(self.name, ok=True, attempts=attempt, status=status)
                error = f"HTTP {status}: {response.text[:200]}"
                if status not in _RETRYABLE:
                    break
        logger.warning(
            "alert %s not delivered to %s after %d attempt(s): %s",
            alert.id,
            self.name,
            attempt,
            error,
        )
        return SinkOutcome(self.name, ok=False, attempts=attempt, status=status, error=error)


class SlackSink(WebhookSink):
    """POSTs each alert to a Slack incoming webhook (or a Slack-compatible receiver such
    as Mattermost's) as ``{"text": …, "blocks": […]}``: ``text`` is the plain fallback
    notifications show, ``blocks`` a header, the message, the fields and a context line."""

    _label = "slack"

    def __init__(
        self,
        url: str,
        timeout: float = 5.0,
        *,
        attempts: int = 2,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(url, None, timeout, attempts=attempts, backoff=backoff, sleep=sleep)

    def payload(self, alert: Alert) -> dict[str, Any]:
        icon = ":red_circle:" if alert.severity == "critical" else ":large_orange_circle:"
        title = f"{alert.severity.upper()}: {alert.rule['kind']} on {alert.deployment}"
        context = f"alert `{alert.id}` · {alert.created_at.isoformat()}"
        if alert.report_id:
            context += f" · report `{_escape(alert.report_id)}`"
        fields = [
            ("Deployment", alert.deployment),
            ("Severity", alert.severity),
            ("Rule", alert.rule["kind"]),
        ]
        if alert.value is not None:
            fields.append(("Value", f"{alert.value:.4g}"))
        if alert.threshold is not None:
            fields.append(("Threshold", f"{alert.threshold:.4g}"))
        return {
            "text": f"[{alert.severity}] {alert.message}",
            "blocks": [
                # Slack's limits: 150 characters for a header, 3,000 for a section's text.
                {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"{icon} {_escape(alert.message)}"[:3000]},
                },
                {
                    "type": "section",
                    "fields": [
                        {"type": "mrkdwn", "text": f"*{name}*\n{_escape(str(value))}"}
                        for name, value in fields
                    ],
                },
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
        }


#: What each sink kind of :func:`sinks_from_config` takes: key → (JSON type, required).
_SINK_KEYS: dict[str, dict[str, tuple[str, bool]]] = {
    "log": {"logger": ("string", False)},
    "webhook": {
        "url": ("string", True),
        "headers": ("mapping", False),
        "timeout": ("number", False),
        "attempts": ("integer", False),
        "backoff": ("number", False),
    },
    "slack": {
        "url": ("string", True),
        "timeout": ("number", False),
        "attempts": ("integer", False),
        "backoff": ("number", False),
    },
}


def sinks_from_config(specs: Any, *, where: str = "sinks") -> list[Sink]:
    """Sinks from a list of mappings, as YAML or JSON give them::

        - {kind: log}
        - {kind: webhook, url: "https://ops.example.com/hooks/ml", headers: {X-Token: abc}}
        - {kind: slack, url: "https://hooks.slack.com/services/…", attempts: 3}

    Raises:
        InvalidInput: naming the entry and key, e.g. ``sinks[1].url is required for webhook``.
    """
    if isinstance(specs, Mapping | str | bytes) or not isinstance(specs, Sequence):
        raise InvalidInput(
            f"{where} must be a list of sink mappings, got {type(specs).__name__}: {specs!r}"
        )
    out: list[Sink] = []
    for i, spec in enumerate(specs):
        at = f"{where}[{i}]"
        if not isinstance(spec, Mapping):
            raise InvalidInput(f"{at} must be a mapping with a 'kind', got {spec!r}")
        kind = spec.get("kind")
        keys = _SINK_KEYS.get(kind) if isinstance(kind, str) else None
        if keys is None:
            raise InvalidInput(f"{at}.kind {kind!r} is not a sink; use one of: log, webhook, slack")
        params = {k: v for k, v in spec.items() if k != "kind"}
        for key, value in params.items():
            if key not in keys:
                known = ", ".join(["kind", *keys])
                raise InvalidInput(
                    f"{at} has unknown key {key!r} for {kind}; its keys are: {known}"
                )
            _check_type(f"{at}.{key}", value, keys[key][0])
        for key, (_, required) in keys.items():
            if required and key not in params:
                raise InvalidInput(f"{at}.{key} is required for {kind}")
        try:
            if kind == "log":
                out.append(LogSink(params.get("logger", "ctloop.alerts")))
            elif kind == "webhook":
                out.append(WebhookSink(**params))
            else:
                out.append(SlackSink(**params))
        except InvalidInput as exc:
            raise InvalidInput(f"{at}: {exc}") from None
    return out


def _check_type(where: str, value: Any, expected: str) -> None:
    ok = {
        "string": isinstance(value, str) and bool(value),
        "mapping": isinstance(value, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
    }[expected]
    if not ok:
        what = {
            "string": "a non-empty string",
            "mapping": "a mapping of strings to strings",
            "number": "a number",
            "integer": "a whole number",
        }[expected]
        raise InvalidInput(f"{where} must be {what}, got {value!r}")


def _escape(text: str) -> str:
    """Slack reads ``&``, ``<`` and ``>`` as markup (``<!channel>`` pings everyone)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
