"""The accounts feature's SQL that Piccolo cannot express: upserts whose update is an expression of the row
(Piccolo's on_conflict sets a column only to the new value), intervals computed by the database's clock,
and the session lookup that joins sessions to users in one round trip."""

# A pair's failures are forgotten this long after its last failure.
MEMORY_HOURS = 24


# Seconds the pair must still wait, or no row.
WAIT_LEFT = """
SELECT ceil(extract(epoch FROM blocked_until - now()))::int FROM login_failures
WHERE account = $1 AND client_address = $2 AND blocked_until > now()
"""

# One statement per failure, so that failures sent at once to several workers all count. A pair whose
# last failure is older than the memory starts again from one.
RECORD_FAILURE = f"""
INSERT INTO login_failures AS f (account, client_address, failures, last_failed_at, blocked_until)
VALUES ($1, $2, 1, now(), now())
ON CONFLICT (account, client_address) DO UPDATE
SET failures = CASE WHEN f.last_failed_at < now() - interval '{MEMORY_HOURS} hours' THEN 1 ELSE f.failures + 1 END,
    last_failed_at = now()
RETURNING f.failures
"""

# The block ends by the database's clock, the clock WAIT_LEFT reads.
BLOCK = "UPDATE login_failures SET blocked_until = now() + make_interval(secs => $3) WHERE account = $1 AND client_address = $2"

# A session or token with its user, in one round trip, only while it is live (database clock).
RESOLVE = """
SELECT s.session_id, u.user_id, u.email, u.name, u.role, u.clinic_id, u.locale
FROM auth_sessions s
JOIN users u ON u.user_id = s.user_id
WHERE s.token_hash = $1 AND s.kind = $2 AND s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active
"""
