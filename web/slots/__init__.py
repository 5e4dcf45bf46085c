"""Bookable time slots with a capacity, partitioned by month of their clinic-local day."""
