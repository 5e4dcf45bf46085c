"""Holds (reservations), bookings and their status history: the booking engine."""
