"""The owner's booking pages, one module per address: ``/book`` (finder), ``/reservations`` (a hold),
``/bookings`` (the owner's bookings) and ``/bookings/{id}/pay`` (paying for one)."""
