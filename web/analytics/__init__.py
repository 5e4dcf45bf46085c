"""Reporting over the booking_analytics_daily materialized view."""
