"""Alerts: rules that turn quality events into alerts, their lifecycle and delivery (to come)."""
