"""The registry's whole schema: the core models and each part's own (alerts, reports,
coupons), for migrations and the test that holds them to each other."""

from __future__ import annotations

from registry import alert_models, coupon_models, report_models
from registry.models import Base

PARTS = (alert_models, report_models, coupon_models)

__all__ = ["PARTS", "Base"]
