package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ImportState is where an import of an app package is.
type ImportState string

const (
	ImportUploading ImportState = "uploading"
	ImportVerifying ImportState = "verifying"
	ImportPushing   ImportState = "pushing"
	ImportRecording ImportState = "recording"
	ImportDone      ImportState = "done"
	ImportFailed    ImportState = "failed"
)

// Valid reports whether st is one of the known states.
func (st ImportState) Valid() bool {
	switch st {
	case ImportUploading, ImportVerifying, ImportPushing, ImportRecording, ImportDone, ImportFailed:
		return true
	}
	return false
}

// Import is one upload of an app package and its progress through the import pipeline.
type Import struct {
	ID        string // made by the caller (random)
	TeamID    int64
	UserID    int64
	FileName  string
	Size      int64 // announced size in bytes
	Received  int64 // bytes received so far
	State     ImportState
	Error     string // why it failed
	AppKey    string // known once verified
	Version   string // known once verified
	CreatedAt time.Time
	UpdatedAt time.Time
}

const importColumns = "id, team_id, user_id, file_name, size, received, state, error, app_key, version, created_at, updated_at"

func scanImport(row interface{ Scan(...any) error }) (*Import, error) {
	var im Import
	var state string
	var created, updated int64
	if err := row.Scan(&im.ID, &im.TeamID, &im.UserID, &im.FileName, &im.Size, &im.Received, &state, &im.Error,
		&im.AppKey, &im.Version, &created, &updated); err != nil {
		return nil, err
	}
	im.State, im.CreatedAt, im.UpdatedAt = ImportState(state), goTime(created), goTime(updated)
	return &im, nil
}

// CreateImport stores im. An empty State is ImportUploading; zero CreatedAt and UpdatedAt are set to now.
// An ID already used is a *ConflictError; a missing team or user is ErrNotFound.
func (s *Store) CreateImport(ctx context.Context, im *Import) error {
	if im.ID == "" {
		return errors.New("create import: the ID is empty")
	}
	if im.State == "" {
		im.State = ImportUploading
	}
	if !im.State.Valid() {
		return fmt.Errorf("create import %s: unknown state %q", im.ID, im.State)
	}
	at := now()
	if im.CreatedAt.IsZero() {
		im.CreatedAt = at
	}
	if im.UpdatedAt.IsZero() {
		im.UpdatedAt = at
	}
	im.CreatedAt, im.UpdatedAt = normTime(im.CreatedAt), normTime(im.UpdatedAt)
	_, err := s.exec(ctx, s.db, "INSERT INTO imports ("+importColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		im.ID, im.TeamID, im.UserID, im.FileName, im.Size, im.Received, string(im.State), im.Error, im.AppKey, im.Version,
		dbTime(im.CreatedAt), dbTime(im.UpdatedAt))
	switch violation(err) {
	case uniqueViolation:
		return &ConflictError{What: "import", Key: im.ID, Detail: "the ID is in use; make a new random ID"}
	case foreignKeyViolation:
		return fmt.Errorf("create import %s: team %d or user %d: %w", im.ID, im.TeamID, im.UserID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create import %s: %w", im.ID, err)
	}
	return nil
}

// Import returns the import with id.
func (s *Store) Import(ctx context.Context, id string) (*Import, error) {
	im, err := scanImport(s.queryRow(ctx, s.db, "SELECT "+importColumns+" FROM imports WHERE id = ?", id))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("import %q", id))
	}
	return im, nil
}

// Imports returns the imports of the teams in teamIDs (nil: of every team), newest first: at most limit of them,
// or all when limit ≤ 0.
func (s *Store) Imports(ctx context.Context, teamIDs []int64, limit int) ([]Import, error) {
	where, args, none := teamFilter("team_id", teamIDs)
	if none {
		return []Import{}, nil
	}
	q := "SELECT " + importColumns + " FROM imports" + where + " ORDER BY created_at DESC, id DESC"
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	return s.imports(ctx, q, args...)
}

// PruneFailedImports deletes a team's failed imports but the newest keep, and returns how many went: a client that
// keeps sending broken packages must not grow the store without bound.
func (s *Store) PruneFailedImports(ctx context.Context, teamID int64, keep int) (int, error) {
	res, err := s.exec(ctx, s.db, `DELETE FROM imports WHERE team_id = ? AND state = ? AND id NOT IN (
	SELECT id FROM imports WHERE team_id = ? AND state = ? ORDER BY created_at DESC, id DESC LIMIT ?)`,
		teamID, string(ImportFailed), teamID, string(ImportFailed), keep)
	if err != nil {
		return 0, fmt.Errorf("prune failed imports of team %d: %w", teamID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune failed imports of team %d: %w", teamID, err)
	}
	return int(n), nil
}

// UnfinishedImports returns every import that is neither done nor failed, oldest first.
func (s *Store) UnfinishedImports(ctx context.Context) ([]Import, error) {
	return s.imports(ctx, "SELECT "+importColumns+" FROM imports WHERE state NOT IN (?, ?) ORDER BY created_at, id",
		string(ImportDone), string(ImportFailed))
}

func (s *Store) imports(ctx context.Context, query string, args ...any) ([]Import, error) {
	out := []Import{}
	rows, err := s.query(ctx, s.db, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list imports: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		im, err := scanImport(rows)
		if err != nil {
			return nil, fmt.Errorf("list imports: %w", err)
		}
		out = append(out, *im)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list imports: %w", err)
	}
	return out, nil
}

// UpdateImport saves im's State, Received, Error, AppKey and Version, and stamps UpdatedAt with the current time.
func (s *Store) UpdateImport(ctx context.Context, im *Import) error {
	if !im.State.Valid() {
		return fmt.Errorf("update import %s: unknown state %q", im.ID, im.State)
	}
	at := now()
	res, err := s.exec(ctx, s.db,
		"UPDATE imports SET state = ?, received = ?, error = ?, app_key = ?, version = ?, updated_at = ? WHERE id = ?",
		string(im.State), im.Received, im.Error, im.AppKey, im.Version, dbTime(at), im.ID)
	if err != nil {
		return fmt.Errorf("update import %s: %w", im.ID, err)
	}
	if err := rowsAffected(res, fmt.Sprintf("import %q", im.ID)); err != nil {
		return err
	}
	im.UpdatedAt = at
	return nil
}
