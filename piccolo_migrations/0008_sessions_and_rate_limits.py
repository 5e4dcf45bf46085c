"""Login sessions and API tokens, and rate-limit counters: both in PostgreSQL so that every app process
shares them (a session survives a restart and works on any worker; a limit holds across workers).
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-11-26T00:00:08:000000"
VERSION = "1.38.0"
DESCRIPTION = "auth_sessions (web sessions and API tokens), rate_limit_hits"

SQL = r"""
CREATE TABLE auth_sessions (
    session_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SHA-256 of the secret the client holds (cookie or bearer token); the secret itself is never stored.
    token_hash BYTEA NOT NULL,
    user_id UUID NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    kind VARCHAR(10) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    user_agent VARCHAR(300),
    CONSTRAINT auth_sessions_token_hash_key UNIQUE (token_hash),
    CONSTRAINT auth_sessions_kind_check CHECK (kind IN ('web', 'api')),
    CONSTRAINT auth_sessions_token_hash_check CHECK (octet_length(token_hash) = 32),
    CONSTRAINT auth_sessions_expiry_check CHECK (expires_at > created_at)
);
CREATE INDEX auth_sessions_user_id_idx ON auth_sessions (user_id);
CREATE INDEX auth_sessions_expires_at_idx ON auth_sessions (expires_at);

-- Fixed-window counters: one row per bucket (e.g. 'login:ip:127.0.0.1') and window start.
CREATE TABLE rate_limit_hits (
    bucket VARCHAR(200) NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT rate_limit_hits_pkey PRIMARY KEY (bucket, window_start),
    CONSTRAINT rate_limit_hits_hits_check CHECK (hits >= 0)
);
CREATE INDEX rate_limit_hits_window_start_idx ON rate_limit_hits (window_start);
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
