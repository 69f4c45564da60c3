"""The venue-month report as one model: JSON is this model, HTML and PDF render from it.

Figures only, no words: the renderer puts them into the reader's language. Volumes are litres,
shares are 0..1, times ms since the epoch, weekdays 0 = Monday, hours local to the venue. Its
JSON schema is part of the OpenAPI document (`GET /venues/{venue}/reports/{month}`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
FORMATS = ("json", "html", "pdf")  # what a report renders to (reports/render.py)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BeerVolume(_Out):
    beer: str
    litres: float
    share: float = Field(description="of the venue's litres sold this month")
    money: float | None = Field(description="litres x the beer's price per litre, when set")


class TapVolume(_Out):
    tap: str
    beers: list[str] = Field(description="the beers it poured this month, by keg")
    litres: float
    kegs: int = Field(description="kegs put on this month (keg turnover)")


class Trend(_Out):
    litres: float
    previous_month_litres: float | None = Field(description="None: no pours that month")
    previous_month_change: float | None = Field(description="0.12 = 12% more than then")
    last_year_litres: float | None
    last_year_change: float | None


class Peak(_Out):
    weekday: int = Field(ge=0, le=6)
    hour: int = Field(ge=0, le=23)
    litres: float


class Compliance(_Out):
    tap: str
    volume_in_range: float | None = Field(
        description="share of the poured volume served within the beer's serving range; "
        "None: no pour with a known temperature"
    )
    open_time_in_range: float | None = Field(
        description="share of the open hours with readings in which the tap was in range"
    )
    open_time_too_cold: float | None = Field(
        description="share of those open hours below the range (the rest out of range: above)"
    )
    open_hours_measured: float


class Waste(_Out):
    foamy_pours: int
    foam_litres: float = Field(description="estimated: a quarter of each foamy pour")
    leak_litres: float = Field(description="slow, endless flows the meters reported")
    foam_by_tap: dict[str, float]
    leak_by_tap: dict[str, float]


class StockOut(_Out):
    tap: str
    beer: str | None
    from_ms: int = Field(description="the pour that emptied the keg")
    to_ms: int | None = Field(description="the next keg; None: still dry at the month's end")
    open_minutes: int = Field(description="minutes the tap stood dry while the venue was open")
    weekday: int = Field(ge=0, le=6, description="local weekday it ran dry")


class Incidents(_Out):
    total: int
    by_check: dict[str, int]
    median_to_acknowledge_s: float | None
    never_acknowledged: int


class Region(_Out):
    region: str
    other_venues: int
    included: bool = Field(description="False: fewer than five other venues to compare with")
    litres_per_tap: float | None
    median_litres_per_tap: float | None = Field(description="of the other venues")
    share_in_range: float | None
    median_share_in_range: float | None


class Tip(_Out):
    rule: str = Field(description="the tips catalogue's rule (reports/tips.py)")
    worth_litres: float = Field(description="what acting on it is worth a month, in litres")
    worth_money: float | None
    figures: dict[str, float | int | str] = Field(description="the figures that justify it")


class Report(_Out):
    schema_version: int = SCHEMA_VERSION
    venue: str
    venue_name: str
    region: str
    timezone: str
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    start_ms: int
    end_ms: int
    generated_ms: int
    taps: int
    has_data: bool = Field(description="False: no pour and no reading this month")
    opened_ms: int | None = Field(
        description="the venue's first reading, when that came more than a day into the month"
    )
    litres: float
    pours: int
    beers: list[BeerVolume] = Field(description="best seller first")
    by_tap: list[TapVolume]
    trend: Trend
    heat_map: list[list[float]] = Field(description="litres, 7 weekdays x 24 local hours")
    peaks: list[Peak]
    compliance: list[Compliance]
    waste: Waste
    stock_outs: list[StockOut]
    incidents: Incidents
    region_comparison: Region
    tips: list[Tip] = Field(description="worth most first")
