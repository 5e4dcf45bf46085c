"""Clinics, their services and staff: the reference data every slot and booking points at."""
