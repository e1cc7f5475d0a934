"""Alerts: evaluate the rules, keep quiet during the cooldown, send to the sinks.

:class:`AlertManager` ties the parts together: the rules of :mod:`ctloop.monitoring.rules`
look at one deployment's :class:`Observations`; an alert whose dedup key fired within the
cooldown is dropped; the rest go to every sink of :mod:`ctloop.monitoring.sinks`. The
names of both modules are re-exported here, so ``from ctloop.monitoring.alerts import …``
reaches everything alerting needs::

    manager = AlertManager(
        rules_from_config(config["alerts"]["rules"]),
        [LogSink(), SlackSink(slack_url)],
        cooldown=timedelta(hours=1),
    )
    for delivery in manager.run(Observations("churn", dataset_drift=drift, health=health)):
        print(delivery.alert.message, [o.ok for o in delivery.outcomes])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ctloop.errors import InvalidInput
from ctloop.monitoring.rules import (
    RULES,
    SEVERITIES,
    Alert,
    DriftShareAbove,
    ErrorRateAbove,
    FeatureScoreAbove,
    LatencyAbove,
    Observations,
    PerformanceBelow,
    Rule,
    rule_from_config,
    rules_from_config,
)
from ctloop.monitoring.sinks import (
    LogSink,
    Sink,
    SinkOutcome,
    SlackSink,
    WebhookSink,
    sinks_from_config,
)

__all__ = [
    "RULES",
    "SEVERITIES",
    "Alert",
    "AlertManager",
    "Delivery",
    "DriftShareAbove",
    "ErrorRateAbove",
    "FeatureScoreAbove",
    "LatencyAbove",
    "LogSink",
    "Observations",
    "PerformanceBelow",
    "Rule",
    "Sink",
    "SinkOutcome",
    "SlackSink",
    "WebhookSink",
    "rule_from_config",
    "rules_from_config",
    "sinks_from_config",
]

logger = logging.getLogger(__name__)


# --- the manager ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """An alert that fired and what each sink did with it."""

    alert: Alert
    outcomes: list[SinkOutcome] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        """Whether at least one sink took it."""
        return any(o.ok for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert.to_dict(), "outcomes": [o.to_dict() for o in self.outcomes]}


class AlertManager:
    """Evaluates rules, applies the cooldown and sends what is left to every sink.

    An alert whose ``dedup_key`` fired less than ``cooldown`` ago is dropped; otherwise the
    key's time is set to now, whether or not the sinks deliver it (a failed delivery is
    reported in its :class:`Delivery`, not retried on the next run). The state (dedup key
    → last time fired) survives a restart through :meth:`state_to_dict` and ``state=``.

    Args:
        rules: the rules to evaluate.
        sinks: where alerts go.
        cooldown: how long a dedup key stays quiet after it fired.
        state: a previous :meth:`state_to_dict` (or key → datetime).
        clock: returns the current time; default: ``datetime.now(UTC)``. Naive times are
            taken as UTC.
    """

    def __init__(
        self,
        rules: Iterable[Rule],
        sinks: Iterable[Sink] = (),
        *,
        cooldown: timedelta = timedelta(minutes=30),
        state: Mapping[str, datetime | str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not isinstance(cooldown, timedelta) or cooldown < timedelta(0):
            raise InvalidInput(f"cooldown={cooldown!r} must be a timedelta of zero or more")
        self.rules = list(rules)
        self.sinks = list(sinks)
        self.cooldown = cooldown
        self._clock = clock or (lambda: datetime.now(UTC))
        self.state = self.state_from_dict(state or {})

    def evaluate(self, observations: Observations, *, now: datetime | None = None) -> list[Alert]:
        """Every alert the rules raise, before the cooldown."""
        at = self._now(now)
        alerts = (rule.evaluate(observations, now=at) for rule in self.rules)
        return [a for a in alerts if a is not None]

    def run(self, observations: Observations, *, now: datetime | None = None) -> list[Delivery]:
        """Evaluate, drop what is cooling down, send the rest to every sink."""
        at = self._now(now)
        out = []
        for alert in self.evaluate(observations, now=at):
            last = self.state.get(alert.dedup_key)
            if last is not None and at - last < self.cooldown:
                logger.debug("alert %s suppressed: fired at %s", alert.dedup_key, last)
                continue
            self.state[alert.dedup_key] = at
            out.append(Delivery(alert, [self._send(sink, alert) for sink in self.sinks]))
        return out

    def state_to_dict(self, *, now: datetime | None = None) -> dict[str, str]:
        """Dedup key → ISO time last fired, for the keys still cooling down."""
        at = self._now(now)
        return {k: t.isoformat() for k, t in sorted(self.state.items()) if at - t < self.cooldown}

    @staticmethod
    def state_from_dict(data: Mapping[str, datetime | str]) -> dict[str, datetime]:
        """The state :meth:`state_to_dict` wrote, as dedup key → aware datetime."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"alert state must be a mapping, got {type(data).__name__}")
        out = {}
        for key, value in data.items():
            try:
                when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"alert state[{key!r}] must be an ISO 8601 time, got {value!r}"
                ) from None
            out[str(key)] = _aware(when)
        return out

    def _now(self, now: datetime | None) -> datetime:
        return _aware(now if now is not None else self._clock())

    @staticmethod
    def _send(sink: Sink, alert: Alert) -> SinkOutcome:
        try:
            return sink.send(alert)
        except Exception as exc:  # a broken sink must not stop the monitor loop
            name = getattr(sink, "name", type(sink).__name__)
            logger.exception("alert sink %s failed on alert %s", name, alert.id)
            return SinkOutcome(name, ok=False, error=f"{type(exc).__name__}: {exc}")


def _aware(when: datetime) -> datetime:
    """Naive times are taken as UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
