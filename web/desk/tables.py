"""Piccolo mapping of the desk's owner look-ups (DDL: piccolo_migrations/0016)."""

from piccolo.columns import UUID, Array, ForeignKey, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from web.accounts.tables import User
from web.clinics.tables import Clinic


class DeskOwnerLookup(Table, tablename="desk_owner_lookups"):
    """One search of an owner at a clinic's desk (or one owner opened there), and whom it showed."""

    lookup_id = UUID(primary_key=True)
    staff_user_id = ForeignKey(references=User, null=False)
    clinic_id = ForeignKey(references=Clinic, null=False)
    kind = Varchar(length=10)
    searched = Varchar(length=254)
    owner_ids = Array(base_column=UUID())
    looked_up_at = Timestamptz(default=TimestamptzNow())
