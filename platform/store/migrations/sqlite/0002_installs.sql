-- App installs: the clusters the platform deploys to, the installs of apps on them and each install's numbered
-- revisions (what was applied, with which values, and how it ended). Times are Unix microseconds (UTC).

CREATE TABLE clusters (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE,
	server     TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
) STRICT;

-- revision is the newest revision's number (pending or finished); deployed the last succeeded one's (0: none yet),
-- version that revision's app version ('' before one succeeds).
CREATE TABLE installs (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	cluster_id INTEGER NOT NULL REFERENCES clusters (id) ON DELETE RESTRICT,
	namespace  TEXT    NOT NULL,
	team_id    INTEGER NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
	app_id     INTEGER NOT NULL REFERENCES apps (id) ON DELETE RESTRICT,
	version    TEXT    NOT NULL DEFAULT '',
	revision   INTEGER NOT NULL CHECK (revision >= 1),
	deployed   INTEGER NOT NULL DEFAULT 0 CHECK (deployed >= 0 AND deployed <= revision),
	state      TEXT    NOT NULL CHECK (state IN ('deploying', 'ready', 'failed', 'rolled-back', 'uninstalling')),
	message    TEXT    NOT NULL DEFAULT '',
	created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	UNIQUE (team_id, name)
) STRICT;
CREATE INDEX installs_cluster ON installs (cluster_id);
CREATE INDEX installs_app ON installs (app_id);

-- from_number: for a rollback, the revision whose objects were re-applied (else 0). values_json: the values given
-- (JSON). objects: the canonical rendered object set (JSON), digest its sha256.
CREATE TABLE revisions (
	install_id  INTEGER NOT NULL REFERENCES installs (id) ON DELETE CASCADE,
	number      INTEGER NOT NULL CHECK (number >= 1),
	version     TEXT    NOT NULL,
	reason      TEXT    NOT NULL CHECK (reason IN ('install', 'upgrade', 'rollback', 'auto-rollback')),
	from_number INTEGER NOT NULL DEFAULT 0 CHECK (from_number >= 0 AND from_number < number),
	values_json TEXT    NOT NULL DEFAULT '{}',
	objects     BLOB    NOT NULL,
	digest      TEXT    NOT NULL,
	outcome     TEXT    NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed')),
	message     TEXT    NOT NULL DEFAULT '',
	created_by  INTEGER REFERENCES users (id) ON DELETE SET NULL,
	created_at  INTEGER NOT NULL,
	finished_at INTEGER,
	PRIMARY KEY (install_id, number),
	CHECK ((outcome = 'pending') = (finished_at IS NULL))
) STRICT;
-- At most one pending revision per install: two servers (or goroutines) cannot both begin one. It also indexes the
-- pending revisions a restarted server resumes.
CREATE UNIQUE INDEX revisions_pending ON revisions (install_id) WHERE outcome = 'pending';
