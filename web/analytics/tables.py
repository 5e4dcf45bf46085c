"""Piccolo mapping of the analytics bookkeeping table (DDL: piccolo_migrations/0014)."""

from piccolo.columns import Timestamptz, Varchar
from piccolo.table import Table


class AnalyticsRefresh(Table, tablename="analytics_refreshes"):
    """When a materialized view was last refreshed (one row per view)."""

    view_name = Varchar(length=63, primary_key=True)
    refreshed_at = Timestamptz()
