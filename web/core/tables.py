"""Piccolo mapping of infrastructure tables (DDL: piccolo_migrations/0008)."""

from piccolo.columns import Integer, Timestamptz, Varchar
from piccolo.table import Table


class RateLimitHit(Table, tablename="rate_limit_hits"):
    # The real primary key is (bucket, window_start); Piccolo needs one column.
    bucket = Varchar(length=200, primary_key=True)
    window_start = Timestamptz()
    hits = Integer(default=0)
