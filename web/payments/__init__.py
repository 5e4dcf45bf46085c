"""Payments and refunds of bookings."""
