package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// InstallState is where an install of an app on a cluster is. ("degraded" is computed live by the deployer from the
// cluster, not stored.)
type InstallState string

const (
	InstallDeploying    InstallState = "deploying"    // a revision is being applied or its health gate is running
	InstallReady        InstallState = "ready"        // the last revision succeeded
	InstallFailed       InstallState = "failed"       // the last revision failed and nothing was rolled back to (or the rollback failed too)
	InstallRolledBack   InstallState = "rolled-back"  // the last upgrade failed and the automatic rollback succeeded
	InstallUninstalling InstallState = "uninstalling" // its objects are being deleted from the cluster
)

// Valid reports whether st is one of the known states.
func (st InstallState) Valid() bool {
	switch st {
	case InstallDeploying, InstallReady, InstallFailed, InstallRolledBack, InstallUninstalling:
		return true
	}
	return false
}

// Install is one app installed by a team in a namespace of a cluster, with its numbered revisions.
type Install struct {
	ID        int64
	Name      string // a DNS label, unique in its team
	ClusterID int64
	Cluster   string // cluster name
	Namespace string
	TeamID    int64
	Team      string // team name
	AppID     int64
	AppKey    string
	Version   string // version of the last succeeded revision ("" before one succeeds)
	Revision  int    // number of the newest revision (pending or finished)
	Deployed  int    // number of the last succeeded revision; 0 when none has
	State     InstallState
	Message   string
	CreatedBy int64 // user ID, 0 when unknown
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RevisionReason is why a revision was made.
type RevisionReason string

const (
	ReasonInstall      RevisionReason = "install"
	ReasonUpgrade      RevisionReason = "upgrade"
	ReasonRollback     RevisionReason = "rollback"      // asked for by a person: re-applies revision From
	ReasonAutoRollback RevisionReason = "auto-rollback" // made by the deployer after a failed upgrade: re-applies From
)

// Valid reports whether r is one of the known reasons.
func (r RevisionReason) Valid() bool {
	switch r {
	case ReasonInstall, ReasonUpgrade, ReasonRollback, ReasonAutoRollback:
		return true
	}
	return false
}

// rollback reports whether r re-applies an earlier revision (and so names it in Revision.From).
func (r RevisionReason) rollback() bool { return r == ReasonRollback || r == ReasonAutoRollback }

// Outcome is how a revision ended, or OutcomePending while it runs.
type Outcome string

const (
	OutcomePending   Outcome = "pending"
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeFailed    Outcome = "failed"
)

// Valid reports whether o is one of the known outcomes.
func (o Outcome) Valid() bool {
	switch o {
	case OutcomePending, OutcomeSucceeded, OutcomeFailed:
		return true
	}
	return false
}

// Revision is one numbered attempt to bring an install to a rendered object set.
type Revision struct {
	InstallID  int64
	Number     int    // 1, 2, … per install
	Version    string // app version
	Reason     RevisionReason
	From       int    // rollback and auto-rollback: the revision whose objects were re-applied; else 0
	Values     []byte // JSON of the values given (env overrides, replicas, domains); "{}" when none
	Objects    []byte // the canonical rendered object set (JSON); nil in lists
	Digest     string // sha256:… of Objects
	Outcome    Outcome
	Message    string // why it failed: the failing pod's reason and last events, or the error; or a note
	CreatedBy  int64  // user ID, 0 when unknown (or made by the deployer)
	CreatedAt  time.Time
	FinishedAt time.Time // zero while pending
}

// ObjectsDigest is the digest of a rendered object set as Revision.Digest holds it: "sha256:" and the hex sha256.
func ObjectsDigest(objects []byte) string {
	sum := sha256.Sum256(objects)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// prepareRevision checks rev before it is stored and fills in its defaults: Values "{}" when empty or null, Objects
// non-nil, Digest computed when empty. The From rule, which needs the number, is checkFrom's.
func prepareRevision(rev *Revision) error {
	switch {
	case rev.Version == "":
		return errors.New("the app version is empty")
	case !rev.Reason.Valid():
		return fmt.Errorf("unknown reason %q", rev.Reason)
	}
	if v := bytes.TrimSpace(rev.Values); len(v) == 0 || string(v) == "null" {
		rev.Values = []byte("{}")
	}
	if !json.Valid(rev.Values) {
		return errors.New("the values are not valid JSON")
	}
	if rev.Objects == nil {
		rev.Objects = []byte{}
	}
	digest := ObjectsDigest(rev.Objects)
	if rev.Digest == "" {
		rev.Digest = digest
	} else if rev.Digest != digest {
		return fmt.Errorf("the digest %s is not that of the objects (%s)", rev.Digest, digest)
	}
	return nil
}

// checkFrom checks that rev, to be revision number, names an earlier revision when it is a rollback and none
// otherwise.
func checkFrom(rev *Revision, number int) error {
	if rev.Reason.rollback() {
		if rev.From < 1 || rev.From >= number {
			return fmt.Errorf("a %s needs the earlier revision it re-applies (From is %d, the new revision is %d)",
				rev.Reason, rev.From, number)
		}
	} else if rev.From != 0 {
		return fmt.Errorf("an %s revision re-applies no earlier one, but From is %d", rev.Reason, rev.From)
	}
	return nil
}

// nullID is id for a nullable reference column: NULL when 0.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

const installSelect = `SELECT i.id, i.name, i.cluster_id, c.name, i.namespace, i.team_id, t.name, i.app_id, a.app_key,
i.version, i.revision, i.deployed, i.state, i.message, i.created_by, i.created_at, i.updated_at
FROM installs i JOIN clusters c ON c.id = i.cluster_id JOIN teams t ON t.id = i.team_id JOIN apps a ON a.id = i.app_id `

func scanInstall(row interface{ Scan(...any) error }) (*Install, error) {
	var in Install
	var state string
	var createdBy sql.NullInt64
	var created, updated int64
	if err := row.Scan(&in.ID, &in.Name, &in.ClusterID, &in.Cluster, &in.Namespace, &in.TeamID, &in.Team, &in.AppID,
		&in.AppKey, &in.Version, &in.Revision, &in.Deployed, &state, &in.Message, &createdBy, &created, &updated); err != nil {
		return nil, err
	}
	in.State, in.CreatedBy, in.CreatedAt, in.UpdatedAt = InstallState(state), createdBy.Int64, goTime(created), goTime(updated)
	return &in, nil
}

const revisionColumns = `r.install_id, r.number, r.version, r.reason, r.from_number, r.values_json, r.digest, r.outcome,
r.message, r.created_by, r.created_at, r.finished_at`

// scanRevision reads revisionColumns, and the objects after them when withObjects.
func scanRevision(row interface{ Scan(...any) error }, withObjects bool) (*Revision, error) {
	var r Revision
	var reason, values, outcome string
	var createdBy, finished sql.NullInt64
	var created int64
	dest := []any{&r.InstallID, &r.Number, &r.Version, &reason, &r.From, &values, &r.Digest, &outcome,
		&r.Message, &createdBy, &created, &finished}
	if withObjects {
		dest = append(dest, &r.Objects)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if withObjects && r.Objects == nil {
		r.Objects = []byte{}
	}
	r.Reason, r.Values, r.Outcome = RevisionReason(reason), []byte(values), Outcome(outcome)
	r.CreatedBy, r.CreatedAt, r.FinishedAt = createdBy.Int64, goTime(created), goTimeOrZero(finished)
	return &r, nil
}

// insertRevision stores rev, pending, as revision rev.Number of rev.InstallID at time at.
func (s *Store) insertRevision(ctx context.Context, tx *sql.Tx, rev *Revision, at time.Time) error {
	_, err := s.exec(ctx, tx, `INSERT INTO revisions (install_id, number, version, reason, from_number, values_json, objects,
	digest, outcome, message, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rev.InstallID, rev.Number, rev.Version, string(rev.Reason), rev.From, string(rev.Values), rev.Objects,
		rev.Digest, string(OutcomePending), rev.Message, nullID(rev.CreatedBy), dbTime(at))
	return err
}

// CreateInstall records a new install and its first revision in one transaction: the install deploying, with
// Revision 1 and Deployed 0, and rev as revision 1, pending. in.ClusterID, in.TeamID and in.AppID must exist
// (ErrNotFound otherwise); in.Name must be a DNS label, and one already used in the team is a *ConflictError. An
// empty rev.Reason is ReasonInstall, a zero rev.CreatedBy is in.CreatedBy; rev.Digest, when empty, is computed
// (when given it must be ObjectsDigest(rev.Objects)), and empty or null rev.Values are "{}".
// On success CreateInstall fills in in's ID, times, state, revision numbers and the joined names, and rev's
// InstallID, Number, Outcome and CreatedAt.
func (s *Store) CreateInstall(ctx context.Context, in *Install, rev *Revision) error {
	if err := checkLabel("install", in.Name); err != nil {
		return fmt.Errorf("create install: %w", err)
	}
	if in.Namespace == "" {
		return fmt.Errorf("create install %q: the namespace is empty", in.Name)
	}
	if rev.Reason == "" {
		rev.Reason = ReasonInstall
	}
	if rev.CreatedBy == 0 {
		rev.CreatedBy = in.CreatedBy
	}
	if err := prepareRevision(rev); err != nil {
		return fmt.Errorf("create install %q: revision 1: %w", in.Name, err)
	}
	if err := checkFrom(rev, 1); err != nil {
		return fmt.Errorf("create install %q: revision 1: %w", in.Name, err)
	}
	at := now()
	var cluster, team, appKey string
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.queryRow(ctx, tx, "SELECT name FROM clusters WHERE id = ?", in.ClusterID).Scan(&cluster); err != nil {
			return fmt.Errorf("create install %q: %w", in.Name, notFound(err, fmt.Sprintf("cluster %d", in.ClusterID)))
		}
		if err := s.queryRow(ctx, tx, "SELECT name FROM teams WHERE id = ?", in.TeamID).Scan(&team); err != nil {
			return fmt.Errorf("create install %q: %w", in.Name, notFound(err, fmt.Sprintf("team %d", in.TeamID)))
		}
		if err := s.queryRow(ctx, tx, "SELECT app_key FROM apps WHERE id = ?", in.AppID).Scan(&appKey); err != nil {
			return fmt.Errorf("create install %q: %w", in.Name, notFound(err, fmt.Sprintf("app %d", in.AppID)))
		}
		err := s.queryRow(ctx, tx, `INSERT INTO installs (name, cluster_id, namespace, team_id, app_id, version, revision,
	deployed, state, message, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '', 1, 0, ?, ?, ?, ?, ?) RETURNING id`,
			in.Name, in.ClusterID, in.Namespace, in.TeamID, in.AppID, string(InstallDeploying), in.Message,
			nullID(in.CreatedBy), dbTime(at), dbTime(at)).Scan(&id)
		switch violation(err) {
		case uniqueViolation:
			return &ConflictError{What: "install", Key: in.Name,
				Detail: fmt.Sprintf("the name is taken in team %q; choose another (or upgrade that install)", team)}
		case foreignKeyViolation: // the others were checked above
			return fmt.Errorf("create install %q: creating user %d: %w", in.Name, in.CreatedBy, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert install %q: %w", in.Name, err)
		}
		r := *rev
		r.InstallID, r.Number = id, 1
		err = s.insertRevision(ctx, tx, &r, at)
		if violation(err) == foreignKeyViolation {
			return fmt.Errorf("create install %q: revision 1: creating user %d: %w", in.Name, rev.CreatedBy, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert revision 1 of install %q: %w", in.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	in.ID, in.Cluster, in.Team, in.AppKey = id, cluster, team, appKey
	in.Version, in.Revision, in.Deployed, in.State = "", 1, 0, InstallDeploying
	in.CreatedAt, in.UpdatedAt = at, at
	rev.InstallID, rev.Number, rev.Outcome, rev.CreatedAt, rev.FinishedAt = id, 1, OutcomePending, at, time.Time{}
	return nil
}

// errBeginRace rolls back a BeginRevision whose insert the database refused because another began meanwhile.
var errBeginRace = errors.New("revision begun concurrently")

// BeginRevision adds rev as the install's next revision (Number = newest + 1, pending) and sets the install
// deploying, with Revision = that number and an empty message, atomically. When the install already has a pending
// revision it writes nothing and returns a *BusyError (errors.Is(err, ErrBusy)); the database enforces this too,
// so two servers racing cannot both begin. A rollback reason needs rev.From, an earlier revision; other reasons
// need From 0. rev.Digest, when empty, is computed (when given it must be ObjectsDigest(rev.Objects)), and empty
// or null rev.Values are "{}". On success BeginRevision sets rev's InstallID, Number,
// Outcome and CreatedAt.
func (s *Store) BeginRevision(ctx context.Context, installID int64, rev *Revision) error {
	what := fmt.Sprintf("install %d", installID)
	if err := prepareRevision(rev); err != nil {
		return fmt.Errorf("begin revision of %s: %w", what, err)
	}
	at := now()
	var number int
	var name string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Updating the install first locks its row (PostgreSQL; SQLite transactions are exclusive), so a
		// concurrent BeginRevision waits here and then sees this one's pending revision.
		err := s.queryRow(ctx, tx, "UPDATE installs SET revision = revision + 1, state = ?, message = '', updated_at = ? "+
			"WHERE id = ? RETURNING revision, name", string(InstallDeploying), dbTime(at), installID).Scan(&number, &name)
		if err != nil {
			return fmt.Errorf("begin revision: %w", notFound(err, what))
		}
		var pending int
		err = s.queryRow(ctx, tx, "SELECT number FROM revisions WHERE install_id = ? AND outcome = 'pending'", installID).Scan(&pending)
		if err == nil {
			return &BusyError{InstallID: installID, Install: name, Pending: pending}
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look up pending revision of install %q: %w", name, err)
		}
		if err := checkFrom(rev, number); err != nil {
			return fmt.Errorf("begin revision %d of install %q: %w", number, name, err)
		}
		r := *rev
		r.InstallID, r.Number = installID, number
		err = s.insertRevision(ctx, tx, &r, at)
		switch violation(err) {
		case uniqueViolation:
			return errBeginRace
		case foreignKeyViolation:
			return fmt.Errorf("begin revision %d of install %q: creating user %d: %w", number, name, rev.CreatedBy, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert revision %d of install %q: %w", number, name, err)
		}
		return nil
	})
	if errors.Is(err, errBeginRace) {
		busy := &BusyError{InstallID: installID, Install: name}
		err := s.queryRow(ctx, s.db, "SELECT number FROM revisions WHERE install_id = ? AND outcome = 'pending'", installID).Scan(&busy.Pending)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look up pending revision of install %q: %w", name, err)
		}
		return busy
	}
	if err != nil {
		return err
	}
	rev.InstallID, rev.Number, rev.Outcome, rev.CreatedAt, rev.FinishedAt = installID, number, OutcomePending, at, time.Time{}
	return nil
}

// FinishRevision ends the pending revision number of installID with outcome (succeeded or failed), message and the
// current time, and sets the install's state and message; a succeeded revision also becomes the install's
// Deployed, its version the install's Version. A revision that does not exist is ErrNotFound; one already finished
// a *ConflictError.
func (s *Store) FinishRevision(ctx context.Context, installID int64, number int, outcome Outcome, message string, state InstallState) error {
	what := fmt.Sprintf("revision %d of install %d", number, installID)
	if outcome != OutcomeSucceeded && outcome != OutcomeFailed {
		return fmt.Errorf("finish %s: outcome %q is not %s or %s", what, outcome, OutcomeSucceeded, OutcomeFailed)
	}
	if !state.Valid() {
		return fmt.Errorf("finish %s: unknown install state %q", what, state)
	}
	at := now()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var version string
		err := s.queryRow(ctx, tx, `UPDATE revisions SET outcome = ?, message = ?, finished_at = ?
WHERE install_id = ? AND number = ? AND outcome = 'pending' RETURNING version`,
			string(outcome), message, dbTime(at), installID, number).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			var was, name string
			err := s.queryRow(ctx, tx, `SELECT r.outcome, i.name FROM revisions r JOIN installs i ON i.id = r.install_id
WHERE r.install_id = ? AND r.number = ?`, installID, number).Scan(&was, &name)
			if err != nil {
				return fmt.Errorf("finish revision: %w", notFound(err, what))
			}
			return &ConflictError{What: "revision", Key: fmt.Sprintf("%s#%d", name, number),
				Detail: fmt.Sprintf("already finished (%s); begin a new revision instead", was)}
		}
		if err != nil {
			return fmt.Errorf("finish %s: %w", what, err)
		}
		if outcome == OutcomeSucceeded {
			_, err = s.exec(ctx, tx, "UPDATE installs SET state = ?, message = ?, deployed = ?, version = ?, updated_at = ? WHERE id = ?",
				string(state), message, number, version, dbTime(at), installID)
		} else {
			_, err = s.exec(ctx, tx, "UPDATE installs SET state = ?, message = ?, updated_at = ? WHERE id = ?",
				string(state), message, dbTime(at), installID)
		}
		if err != nil {
			return fmt.Errorf("update install %d: %w", installID, err)
		}
		return nil
	})
}

// SetInstallState sets the install's state and message (e.g. uninstalling).
func (s *Store) SetInstallState(ctx context.Context, installID int64, state InstallState, message string) error {
	if !state.Valid() {
		return fmt.Errorf("set state of install %d: unknown state %q", installID, state)
	}
	res, err := s.exec(ctx, s.db, "UPDATE installs SET state = ?, message = ?, updated_at = ? WHERE id = ?",
		string(state), message, dbTime(now()), installID)
	if err != nil {
		return fmt.Errorf("set state of install %d: %w", installID, err)
	}
	return rowsAffected(res, fmt.Sprintf("install %d", installID))
}

// Install returns the install with id.
func (s *Store) Install(ctx context.Context, id int64) (*Install, error) {
	in, err := scanInstall(s.queryRow(ctx, s.db, installSelect+"WHERE i.id = ?", id))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("install %d", id))
	}
	return in, nil
}

// InstallByName returns the install called name in teamID.
func (s *Store) InstallByName(ctx context.Context, teamID int64, name string) (*Install, error) {
	in, err := scanInstall(s.queryRow(ctx, s.db, installSelect+"WHERE i.team_id = ? AND i.name = ?", teamID, name))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("install %q of team %d", name, teamID))
	}
	return in, nil
}

// Installs returns the installs of the teams in teamIDs (nil: of every team; empty: none), sorted by team name
// and then install name.
func (s *Store) Installs(ctx context.Context, teamIDs []int64) ([]Install, error) {
	out := []Install{}
	where, args, none := teamFilter("i.team_id", teamIDs)
	if none {
		return out, nil
	}
	rows, err := s.query(ctx, s.db, installSelect+where+" ORDER BY t.name, i.name", args...)
	if err != nil {
		return nil, fmt.Errorf("list installs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		in, err := scanInstall(rows)
		if err != nil {
			return nil, fmt.Errorf("list installs: %w", err)
		}
		out = append(out, *in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list installs: %w", err)
	}
	return out, nil
}

// Revisions returns the revisions of installID, newest first, with their values but without their objects (none
// for an install that does not exist).
func (s *Store) Revisions(ctx context.Context, installID int64) ([]Revision, error) {
	return s.revisions(ctx, fmt.Sprintf("list revisions of install %d", installID), false,
		"SELECT "+revisionColumns+" FROM revisions r WHERE r.install_id = ? ORDER BY r.number DESC", installID)
}

// Revision returns revision number of installID, with its objects.
func (s *Store) Revision(ctx context.Context, installID int64, number int) (*Revision, error) {
	r, err := scanRevision(s.queryRow(ctx, s.db, "SELECT "+revisionColumns+", r.objects FROM revisions r "+
		"WHERE r.install_id = ? AND r.number = ?", installID, number), true)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("revision %d of install %d", number, installID))
	}
	return r, nil
}

// PendingRevisions returns every pending revision of every install, with its objects, oldest first: what a
// restarted server resumes.
func (s *Store) PendingRevisions(ctx context.Context) ([]Revision, error) {
	// The literal 'pending' (not a parameter) lets both databases use the partial index revisions_pending.
	return s.revisions(ctx, "list pending revisions", true, "SELECT "+revisionColumns+", r.objects FROM revisions r "+
		"WHERE r.outcome = 'pending' ORDER BY r.created_at, r.install_id")
}

func (s *Store) revisions(ctx context.Context, what string, withObjects bool, query string, args ...any) ([]Revision, error) {
	rows, err := s.query(ctx, s.db, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []Revision{}
	for rows.Next() {
		r, err := scanRevision(rows, withObjects)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// DeleteInstall deletes the install with id and its revisions.
func (s *Store) DeleteInstall(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM installs WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("delete install %d: %w", id, err)
	}
	return rowsAffected(res, fmt.Sprintf("install %d", id))
}
