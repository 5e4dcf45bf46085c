"""The receptionist's desk: the day view, check-in by booking code, walk-ins and phone bookings, payment at the desk."""
