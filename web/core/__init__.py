"""Cross-cutting infrastructure: settings, the database (embedded or external), maintenance jobs."""
