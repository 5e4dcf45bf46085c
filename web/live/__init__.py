"""Live updates: PostgreSQL notifications (raised on commit) pushed to open pages as server-sent events."""
