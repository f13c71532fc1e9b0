package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/Masterminds/semver/v3"
)

// App is an application a team imported; its versions are immutable.
type App struct {
	ID            int64
	Key           string // stable, unique across the platform
	Name          string // of the highest version recorded so far
	Description   string // of the highest version recorded so far
	TeamID        int64  // the owning team: only it may record versions
	TeamName      string
	LatestVersion string // highest semver among the versions ("" when there is none)
	CreatedAt     time.Time
	UpdatedAt     time.Time // when the last version was recorded
}

// Image is one image a version names.
type Image struct {
	Name   string // the reference in the package (the app model)
	Target string // the reference in the platform's registry
	Digest string // index digest
}

// Version is one imported, immutable version of an app.
type Version struct {
	ID            int64
	AppID         int64
	AppKey        string
	Version       string // semver
	ContentDigest string // sha256:… of the canonical app JSON
	PackageDigest string // sha256:… of the package manifest
	Signer        string
	Size          int64
	Model         []byte // canonical app JSON; nil in lists (Versions)
	Images        []Image
	ImportID      string
	CreatedBy     int64 // user ID; 0 when unknown
	CreatedAt     time.Time
}

const appSelect = `SELECT a.id, a.app_key, a.name, a.description, a.team_id, t.name, a.created_at, a.updated_at
FROM apps a JOIN teams t ON t.id = a.team_id `

func scanApp(row interface{ Scan(...any) error }) (*App, error) {
	var a App
	var created, updated int64
	if err := row.Scan(&a.ID, &a.Key, &a.Name, &a.Description, &a.TeamID, &a.TeamName, &created, &updated); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = goTime(created), goTime(updated)
	return &a, nil
}

// Apps returns the apps of the teams in teamIDs (nil: of every team), sorted by key, each with its LatestVersion.
func (s *Store) Apps(ctx context.Context, teamIDs []int64) ([]App, error) {
	out := []App{}
	where, args, none := teamFilter("a.team_id", teamIDs)
	if none {
		return out, nil
	}
	rows, err := s.query(ctx, s.db, appSelect+where+" ORDER BY a.app_key", args...)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	defer rows.Close()
	index := map[int64]int{}
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, fmt.Errorf("list apps: %w", err)
		}
		index[a.ID] = len(out)
		out = append(out, *a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	rows.Close()

	vrows, err := s.query(ctx, s.db, "SELECT v.app_id, v.version FROM versions v JOIN apps a ON a.id = v.app_id "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list app versions: %w", err)
	}
	defer vrows.Close()
	for vrows.Next() {
		var id int64
		var v string
		if err := vrows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("list app versions: %w", err)
		}
		if i, ok := index[id]; ok && semverLess(out[i].LatestVersion, v) {
			out[i].LatestVersion = v
		}
	}
	if err := vrows.Err(); err != nil {
		return nil, fmt.Errorf("list app versions: %w", err)
	}
	return out, nil
}

// AppByKey returns the app with key, with its LatestVersion.
func (s *Store) AppByKey(ctx context.Context, key string) (*App, error) {
	a, err := scanApp(s.queryRow(ctx, s.db, appSelect+"WHERE a.app_key = ?", key))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("app %q", key))
	}
	latest, err := s.latestVersion(ctx, s.db, a.ID)
	if err != nil {
		return nil, err
	}
	a.LatestVersion = latest
	return a, nil
}

// latestVersion returns the highest semver among appID's versions ("" when there is none).
func (s *Store) latestVersion(ctx context.Context, q querier, appID int64) (string, error) {
	rows, err := s.query(ctx, q, "SELECT version FROM versions WHERE app_id = ?", appID)
	if err != nil {
		return "", fmt.Errorf("list versions of app %d: %w", appID, err)
	}
	defer rows.Close()
	latest := ""
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return "", fmt.Errorf("list versions of app %d: %w", appID, err)
		}
		if semverLess(latest, v) {
			latest = v
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("list versions of app %d: %w", appID, err)
	}
	return latest, nil
}

const versionColumns = `v.id, v.app_id, a.app_key, v.version, v.content_digest, v.package_digest, v.signer, v.size,
v.import_id, v.created_by, v.created_at`

// scanVersion reads versionColumns, and the model after them when withModel.
func scanVersion(row interface{ Scan(...any) error }, withModel bool) (*Version, error) {
	var v Version
	var createdBy sql.NullInt64
	var created int64
	dest := []any{&v.ID, &v.AppID, &v.AppKey, &v.Version, &v.ContentDigest, &v.PackageDigest, &v.Signer, &v.Size,
		&v.ImportID, &createdBy, &created}
	if withModel {
		dest = append(dest, &v.Model)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	v.CreatedBy, v.CreatedAt, v.Images = createdBy.Int64, goTime(created), []Image{}
	return &v, nil
}

// Versions returns appID's versions, highest semver first, with their images but without the model.
func (s *Store) Versions(ctx context.Context, appID int64) ([]Version, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+versionColumns+" FROM versions v JOIN apps a ON a.id = v.app_id WHERE v.app_id = ?", appID)
	if err != nil {
		return nil, fmt.Errorf("list versions of app %d: %w", appID, err)
	}
	defer rows.Close()
	out := []Version{}
	index := map[int64]int{}
	for rows.Next() {
		v, err := scanVersion(rows, false)
		if err != nil {
			return nil, fmt.Errorf("list versions of app %d: %w", appID, err)
		}
		index[v.ID] = len(out)
		out = append(out, *v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list versions of app %d: %w", appID, err)
	}
	rows.Close()

	irows, err := s.query(ctx, s.db, `SELECT i.version_id, i.name, i.target, i.digest FROM version_images i
JOIN versions v ON v.id = i.version_id WHERE v.app_id = ? ORDER BY i.version_id, i.position`, appID)
	if err != nil {
		return nil, fmt.Errorf("list images of app %d: %w", appID, err)
	}
	defer irows.Close()
	for irows.Next() {
		var id int64
		var im Image
		if err := irows.Scan(&id, &im.Name, &im.Target, &im.Digest); err != nil {
			return nil, fmt.Errorf("list images of app %d: %w", appID, err)
		}
		if i, ok := index[id]; ok {
			out[i].Images = append(out[i].Images, im)
		}
	}
	if err := irows.Err(); err != nil {
		return nil, fmt.Errorf("list images of app %d: %w", appID, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return semverLess(out[j].Version, out[i].Version) })
	return out, nil
}

// Version returns version of the app with appKey, with its model and images.
func (s *Store) Version(ctx context.Context, appKey, version string) (*Version, error) {
	what := fmt.Sprintf("version %s of app %q", version, appKey)
	v, err := scanVersion(s.queryRow(ctx, s.db, "SELECT "+versionColumns+`, v.model
FROM versions v JOIN apps a ON a.id = v.app_id WHERE a.app_key = ? AND v.version = ?`, appKey, version), true)
	if err != nil {
		return nil, notFound(err, what)
	}
	rows, err := s.query(ctx, s.db, "SELECT name, target, digest FROM version_images WHERE version_id = ? ORDER BY position", v.ID)
	if err != nil {
		return nil, fmt.Errorf("read images of %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var im Image
		if err := rows.Scan(&im.Name, &im.Target, &im.Digest); err != nil {
			return nil, fmt.Errorf("read images of %s: %w", what, err)
		}
		v.Images = append(v.Images, im)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read images of %s: %w", what, err)
	}
	return v, nil
}

// semverLess reports whether version a sorts below b. Versions that do not parse as semver sort below those that
// do, and among themselves by their text; "" is the lowest of all.
func semverLess(a, b string) bool {
	if a == b {
		return false
	}
	va, errA := semver.NewVersion(a)
	vb, errB := semver.NewVersion(b)
	switch {
	case errA == nil && errB == nil:
		if c := va.Compare(vb); c != 0 {
			return c < 0
		}
		return a < b // 1.0 and 1.0.0 are equal as semver: keep a stable order
	case errA == nil:
		return false
	case errB == nil:
		return true
	}
	return a < b
}
