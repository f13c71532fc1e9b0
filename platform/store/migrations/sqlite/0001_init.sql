-- The platform's first schema. Times are Unix microseconds (UTC); NULL where a time may be absent.

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL UNIQUE,
	display_name  TEXT    NOT NULL DEFAULT '',
	password_hash TEXT    NOT NULL DEFAULT '',
	admin         INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
	disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE teams (
	id           INTEGER PRIMARY KEY,
	name         TEXT    NOT NULL UNIQUE,
	display_name TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE members (
	team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role    TEXT    NOT NULL CHECK (role IN ('team-admin', 'member', 'viewer')),
	PRIMARY KEY (team_id, user_id)
) STRICT;
CREATE INDEX members_user ON members (user_id);

CREATE TABLE tokens (
	id           INTEGER PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name         TEXT    NOT NULL DEFAULT '',
	kind         TEXT    NOT NULL CHECK (kind IN ('session', 'api')),
	hash         TEXT    NOT NULL UNIQUE,
	expires_at   INTEGER,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER
) STRICT;
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE apps (
	id          INTEGER PRIMARY KEY,
	app_key     TEXT    NOT NULL UNIQUE,
	name        TEXT    NOT NULL DEFAULT '',
	description TEXT    NOT NULL DEFAULT '',
	team_id     INTEGER NOT NULL REFERENCES teams (id),
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX apps_team ON apps (team_id);

CREATE TABLE versions (
	id             INTEGER PRIMARY KEY,
	app_id         INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
	version        TEXT    NOT NULL,
	content_digest TEXT    NOT NULL,
	package_digest TEXT    NOT NULL DEFAULT '',
	signer         TEXT    NOT NULL DEFAULT '',
	size           INTEGER NOT NULL DEFAULT 0,
	model          BLOB,
	import_id      TEXT    NOT NULL DEFAULT '',
	created_by     INTEGER REFERENCES users (id) ON DELETE SET NULL,
	created_at     INTEGER NOT NULL,
	UNIQUE (app_id, version)
) STRICT;

CREATE TABLE version_images (
	version_id INTEGER NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
	position   INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	target     TEXT    NOT NULL,
	digest     TEXT    NOT NULL,
	PRIMARY KEY (version_id, name)
) STRICT;

CREATE TABLE imports (
	id         TEXT    PRIMARY KEY,
	team_id    INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id    INTEGER NOT NULL REFERENCES users (id),
	file_name  TEXT    NOT NULL DEFAULT '',
	size       INTEGER NOT NULL DEFAULT 0,
	received   INTEGER NOT NULL DEFAULT 0,
	state      TEXT    NOT NULL CHECK (state IN ('uploading', 'verifying', 'pushing', 'recording', 'done', 'failed')),
	error      TEXT    NOT NULL DEFAULT '',
	app_key    TEXT    NOT NULL DEFAULT '',
	version    TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX imports_team_created ON imports (team_id, created_at);
CREATE INDEX imports_created ON imports (created_at);
