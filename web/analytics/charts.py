"""Geometry of the analytics page's SVG charts, computed on the server (no chart library, no script).

The templates draw the shapes and write the labels (formatted in the reader's language); this module only
places them in the chart's viewBox. Every chart also has a table with the same numbers on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from web.analytics.services import DailyFigures, ServiceFigures

TREND_WIDTH = 760
TREND_HEIGHT = 240
TREND_LEFT = 44  # room for the bookings axis labels
TREND_RIGHT = 96  # room for the revenue axis labels
TREND_TOP = 14
TREND_BOTTOM = 30  # room for the day labels

SERVICE_WIDTH = 760
SERVICE_ROW = 30
SERVICE_LABEL = 230  # room for the service names
SERVICE_VALUE = 170  # room for the figures right of the bars


@dataclass(frozen=True)
class TrendBar:
    x: float
    y: float
    width: float
    height: float
    day: date
    bookings: int
    revenue: Decimal


@dataclass(frozen=True)
class DayTick:
    x: float
    day: date


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    bars: list[TrendBar]
    revenue_points: str  # the polyline's "x,y x,y ..."
    ticks: list[DayTick]
    max_bookings: int
    max_revenue: Decimal


def _step_ceiling(value: int) -> int:
    """A round axis maximum at or above ``value`` (at least 1)."""
    if value <= 5:
        return max(value, 1)
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def trend_chart(daily: list[DailyFigures]) -> TrendChart:
    """Bars of bookings per day (left axis) and a line of revenue per day (right axis)."""
    plot_left, plot_right = TREND_LEFT, TREND_WIDTH - TREND_RIGHT
    plot_top, plot_bottom = TREND_TOP, TREND_HEIGHT - TREND_BOTTOM
    plot_height = plot_bottom - plot_top
    count = max(len(daily), 1)
    slot = (plot_right - plot_left) / count
    bar_width = max(slot * 0.7, 1.0)
    max_bookings = _step_ceiling(max((d.figures.bookings for d in daily), default=0))
    max_revenue = max((d.figures.revenue for d in daily), default=Decimal("0"))
    bars, points = [], []
    for index, day in enumerate(daily):
        center = plot_left + slot * (index + 0.5)
        height = plot_height * day.figures.bookings / max_bookings
        bars.append(TrendBar(round(center - bar_width / 2, 2), round(plot_bottom - height, 2), round(bar_width, 2),
                             round(height, 2), day.day, day.figures.bookings, day.figures.revenue))
        revenue_y = plot_bottom - (float(day.figures.revenue / max_revenue) * plot_height if max_revenue else 0)
        points.append(f"{center:.2f},{revenue_y:.2f}")
    # About six day labels, always the first and the last day.
    every = max(1, round(count / 6))
    ticks = [DayTick(bar.x + bar.width / 2, bar.day) for index, bar in enumerate(bars)
             if index % every == 0 or index == count - 1]
    if len(ticks) >= 2 and ticks[-1].x - ticks[-2].x < slot * every / 2:
        del ticks[-2]
    return TrendChart(TREND_WIDTH, TREND_HEIGHT, plot_left, plot_right, plot_top, plot_bottom, bars,
                      " ".join(points), ticks, max_bookings, max_revenue)


@dataclass(frozen=True)
class ServiceBar:
    y: float
    width: float
    service: ServiceFigures


@dataclass(frozen=True)
class ServiceChart:
    width: int
    height: int
    bar_left: int
    bar_height: int
    value_x: int
    bars: list[ServiceBar]


def service_chart(by_service: list[ServiceFigures]) -> ServiceChart:
    """Horizontal bars of revenue per service (by bookings when nothing was paid yet)."""
    bar_area = SERVICE_WIDTH - SERVICE_LABEL - SERVICE_VALUE
    by_revenue = any(s.figures.revenue for s in by_service)

    def measure(service: ServiceFigures) -> Decimal:
        return service.figures.revenue if by_revenue else Decimal(service.figures.bookings)

    largest = max((measure(s) for s in by_service), default=Decimal("0"))
    bars = [
        ServiceBar(index * SERVICE_ROW + 4,
                   round(float(measure(service) / largest) * bar_area, 2) if largest else 0.0, service)
        for index, service in enumerate(by_service)
    ]
    return ServiceChart(SERVICE_WIDTH, max(len(bars), 1) * SERVICE_ROW + 4, SERVICE_LABEL, SERVICE_ROW - 10,
                        SERVICE_LABEL + bar_area + 8, bars)
