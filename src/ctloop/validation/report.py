"""What a validation found: every check with expected vs observed, and the verdict.

A :class:`ValidationReport` is plain data (no pandas): it pickles, turns into JSON with
:meth:`~ValidationReport.to_dict`, and renders as text with
:meth:`~ValidationReport.to_text`. Only failed checks of severity ``error`` make it fail;
``warn`` failures are reported and nothing more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from ctloop._internal.wire import to_wire
from ctloop.errors import InvalidInput

__all__ = ["CheckResult", "ValidationFailed", "ValidationReport"]

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    ``expected`` and ``observed`` are JSON-able (a dtype name, ``{"min": 0, "max": 10}``,
    ``{"null_count": 3}`` …). ``failure_count`` counts failing rows for row-wise checks
    (None for checks of the whole column or table, such as ``dtype`` or ``row_count``);
    ``failing_rows`` samples a few of them as ``{"row": index label, "value": value}``.
    """

    check: str  # e.g. "age.range" or "row_count"
    kind: str
    column: str | None
    severity: str  # error | warn
    status: Status
    expected: Any
    observed: Any
    message: str
    failure_count: int | None = None
    failing_rows: tuple[dict[str, Any], ...] = ()

    @property
    def passed(self) -> bool:
        """True unless the check failed (a skipped check did not fail)."""
        return self.status != "failed"


@dataclass(frozen=True)
class ValidationReport:
    """Every check of a suite run on one table, and whether the table passed."""

    results: tuple[CheckResult, ...]
    row_count: int
    suite: str | None = None  # the suite's name
    dataset: str | None = None  # NAME@VERSION, when a dataset version was validated
    column_count: int = 0

    @property
    def success(self) -> bool:
        """True when no check of severity ``error`` failed."""
        return not self.errors

    @property
    def errors(self) -> list[CheckResult]:
        """Failed checks of severity ``error``: the reasons the validation failed."""
        return [r for r in self.results if r.status == "failed" and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        """Failed checks of severity ``warn``: reported, but the validation still passes."""
        return [r for r in self.results if r.status == "failed" and r.severity != "error"]

    @property
    def counts(self) -> dict[str, int]:
        """How many checks passed, failed with each severity, or were skipped."""
        return {
            "checks": len(self.results),
            "passed": sum(r.status == "passed" for r in self.results),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "skipped": sum(r.status == "skipped" for r in self.results),
        }

    def result(self, check: str) -> CheckResult:
        """The result of the check with this id (``age.range``, ``row_count``).

        Raises:
            InvalidInput: no check has this id; the message lists them.
        """
        for r in self.results:
            if r.check == check:
                return r
        raise InvalidInput(
            f"the report has no check {check!r}; its checks are {[r.check for r in self.results]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: verdict, counts and every check."""
        return {
            "success": self.success,
            "suite": self.suite,
            "dataset": self.dataset,
            "row_count": self.row_count,
            "column_count": self.column_count,
            "counts": self.counts,
            "results": [to_wire(r) for r in self.results],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as a JSON document (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def summary(self) -> str:
        """One line: the verdict and the counts."""
        c = self.counts
        what = f" of {self.dataset}" if self.dataset else ""
        suite = f" against suite '{self.suite}'" if self.suite else ""
        verdict = "passed" if self.success else "FAILED"
        parts = [f"{c['passed']} of {c['checks']} checks passed"]
        if c["errors"]:
            parts.append(f"{c['errors']} error(s)")
        if c["warnings"]:
            parts.append(f"{c['warnings']} warning(s)")
        if c["skipped"]:
            parts.append(f"{c['skipped']} skipped")
        return (
            f"validation{what}{suite} {verdict}: {', '.join(parts)} "
            f"({self.row_count:,} rows, {self.column_count} columns)"
        )

    def to_text(self) -> str:
        """A readable rendering: the summary, then one line per check, failures first."""
        order = {"failed": 0, "skipped": 1, "passed": 2}
        ranked = sorted(
            self.results, key=lambda r: (order[r.status], r.severity != "error")
        )  # stable: suite order within each group
        lines = [self.summary()]
        for r in ranked:
            mark = {"passed": "ok  ", "skipped": "skip", "failed": "FAIL"}[r.status]
            if r.status == "failed" and r.severity != "error":
                mark = "warn"
            lines.append(f"  {mark} {r.check}: {r.message}")
            if r.failing_rows:
                lines.append(f"         e.g. {format_rows(r.failing_rows)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def raise_for_errors(self) -> None:
        """Raise :class:`ValidationFailed` if a check of severity ``error`` failed.

        Raises:
            ValidationFailed: listing each failed error check; it carries this report.
        """
        if not self.success:
            raise ValidationFailed(self)


def format_rows(rows: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> str:
    """A sample of failing rows as ``row 3: -1.0, row 7: 250.0``."""
    return ", ".join(f"row {r.get('row')}: {_value(r.get('value'))}" for r in rows)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


class ValidationFailed(InvalidInput):
    """Data failed checks of severity ``error``; ``report`` holds every check's outcome."""

    def __init__(self, report: ValidationReport) -> None:
        failed = report.errors
        lines = [
            f"{report.summary()}; failed error checks:",
            *(f"  - {r.check}: {r.message}" for r in failed),
        ]
        super().__init__("\n".join(lines))
        self.report = report

    def __reduce__(self) -> tuple[type[ValidationFailed], tuple[ValidationReport]]:
        # Pipeline steps run in worker processes: rebuild from the report, not the message.
        return (type(self), (self.report,))
