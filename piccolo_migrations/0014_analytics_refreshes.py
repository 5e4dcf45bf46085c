"""When the analytics view was last refreshed, so that the manager's page can say "data as of".

PostgreSQL records no time of a materialized view's last refresh. ``analytics_refreshes`` holds one row
per view, written in the same transaction as the refresh (web/analytics/services.py), so the time never
claims more than the view holds. The view is refreshed here once, so the first row tells the truth too.
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-11-26T00:00:14:000000"
VERSION = "1.38.0"
DESCRIPTION = "analytics_refreshes: when booking_analytics_daily was last refreshed"

SQL = r"""
CREATE TABLE analytics_refreshes (
    view_name VARCHAR(63) PRIMARY KEY,
    -- The start of the refreshing transaction: every booking committed before it is in the view.
    refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT analytics_refreshes_view_name_check CHECK (view_name IN ('booking_analytics_daily'))
);

REFRESH MATERIALIZED VIEW booking_analytics_daily;
INSERT INTO analytics_refreshes (view_name, refreshed_at) VALUES ('booking_analytics_daily', now());
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
