"""The validated number types behind every number a user gives loopcraft (command line, config
files, ``LOOPCRAFT_*`` variables, the Python API): budgets, delays, timeouts, leases and counts.

Each :class:`Bound` says what is allowed (finite, above or from a floor, at most a ceiling, whole
where a count is meant) and is usable as a pydantic type (:meth:`Bound.type`); a refused value's
message says what is allowed, e.g. ``must be a whole number from 1 to 1,000,000 (got 0.5)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

DAY = 86_400.0


@dataclass(frozen=True)
class Bound:
    """What one kind of number may be: ``whole`` (a count) or not, at least ``low`` (strictly
    above it when ``above``), at most ``high``, always finite."""

    low: float
    high: float
    whole: bool = False
    above: bool = False
    unit: str = ""

    def allowed(self) -> str:
        """What is allowed, in words: ``a whole number from 1 to 1,000,000``."""
        kind = "a whole number" if self.whole else "a number"
        unit = f" of {self.unit}" if self.unit else ""
        low, high = _num(self.low), _num(self.high)
        if self.above:
            return f"{kind}{unit} above {low}, at most {high}"
        return f"{kind}{unit} from {low} to {high}"

    def check(self, value: Any) -> int | float:
        """``value`` (a number, or the text of one) as an int or float; ValueError otherwise."""
        number = _number(value)
        refused = (
            number is None
            or not math.isfinite(number)
            or number > self.high
            or (number <= self.low if self.above else number < self.low)
            or (self.whole and number != int(number))
        )
        if refused or number is None:
            raise ValueError(f"must be {self.allowed()} (got {_shown(value)})")
        return int(number) if self.whole else float(number)

    def type(self) -> Any:
        """This bound as a pydantic type (``Annotated[int|float, …]``)."""

        def validate(value: Any) -> int | float:
            try:
                return self.check(value)
            except ValueError as exc:
                raise PydanticCustomError("number_bound", str(exc)) from None

        return Annotated[int if self.whole else float, BeforeValidator(validate)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            return float(value) if abs(value) < 10**300 else math.inf
        except OverflowError:
            return math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(int(text)) if text.lstrip("+-").isdigit() else float(text)
        except (ValueError, OverflowError):
            return None
    return None


def _num(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- the bounds in use -------------------------------------------------------------------------

TOKENS = Bound(1, 10**12, whole=True, unit="tokens")
DOLLARS = Bound(0, 1_000_000, above=True, unit="dollars")
SECONDS = Bound(0, 366 * DAY, above=True, unit="seconds")
STAGES = Bound(1, 1_000_000, whole=True, unit="stages")
COUNT = Bound(1, 1_000_000, whole=True)  # turns, tool calls, stages, outputs
TIMEOUT = Bound(0, 7 * DAY, above=True, unit="seconds")  # a shell command, a request, a run's wall time
DELAY = Bound(0, 3_600, unit="seconds")  # retry waits
LEASE = Bound(0, 3_600, above=True, unit="seconds")  # leases, heartbeats, polls

BUDGET_BOUNDS: dict[str, Bound] = {"tokens": TOKENS, "dollars": DOLLARS, "seconds": SECONDS, "stages": STAGES}

Tokens = TOKENS.type()
Dollars = DOLLARS.type()
Count = COUNT.type()
Timeout = TIMEOUT.type()
Delay = DELAY.type()
LeaseSeconds = LEASE.type()

# whole numbers from LOW to HIGH for the other counts in the config (bools and fractions refused)
Whole0To20 = Bound(0, 20, whole=True).type()
Whole1To10000 = Bound(1, 10_000, whole=True).type()
Whole1To1000 = Bound(1, 1_000, whole=True).type()
Whole101To100000000 = Bound(101, 100_000_000, whole=True).type()
Whole2To1000 = Bound(2, 1_000, whole=True).type()
