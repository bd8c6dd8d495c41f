-- The operators' console (/admin): accounts, sessions that every replica shares, and failed
-- logins for the per-minute limit.

CREATE TABLE console_users (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL,        -- viewer | operator
    password_hash  TEXT NOT NULL,        -- argon2id, as a PHC string
    created_at     INTEGER NOT NULL
);

-- A session is stored by the SHA-256 of its cookie's id: a copy of this table opens none.
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL,
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_name);

-- One row per failed login and per what it counts against: the client's address
-- (`addr:<ip>`) and the user name (`user:<name>`).
CREATE TABLE console_login_failures (
    source  TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX console_login_failures_source ON console_login_failures (source, at);
