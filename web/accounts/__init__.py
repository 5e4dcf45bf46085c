"""People (owners, receptionists, managers) and the pets owners book for."""
