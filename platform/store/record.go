package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/Masterminds/semver/v3"
)

// errVersionExists rolls back a RecordVersion transaction that found its version already recorded.
var errVersionExists = errors.New("version exists")

// RecordVersion records an imported version in one transaction: it creates the app (owned by teamID, with
// app.Key, app.Name and app.Description) if it is missing, inserts the version and its images, and makes the app's
// name and description those of its highest version. On success it sets v.ID, v.AppID, v.AppKey and v.CreatedAt.
//
// An app owned by another team is a *ConflictError; it does not name that team, which the caller may not see. A version already recorded with the same
// ContentDigest is a no-op: (false, nil). One recorded with another ContentDigest is a *ConflictError: versions are
// immutable, so changed content needs a new version number. Concurrent calls for the same version insert it once
// (the database's uniqueness constraint decides); the others see it as already recorded.
func (s *Store) RecordVersion(ctx context.Context, teamID int64, app App, v *Version) (created bool, err error) {
	switch {
	case app.Key == "":
		return false, errors.New("record version: the app key is empty")
	case v.AppKey != "" && v.AppKey != app.Key:
		return false, fmt.Errorf("record version: the version names app %q but the app is %q", v.AppKey, app.Key)
	case v.ContentDigest == "":
		return false, fmt.Errorf("record version %s of app %q: the content digest is empty", v.Version, app.Key)
	}
	if _, err := semver.NewVersion(v.Version); err != nil {
		return false, fmt.Errorf("record version of app %q: %q is not a semantic version: %w", app.Key, v.Version, err)
	}
	what := fmt.Sprintf("version %s of app %q", v.Version, app.Key)
	at := now()
	var appID, versionID int64
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if appID, err = s.ensureApp(ctx, tx, teamID, app, at); err != nil {
			return err
		}
		var digest string
		err = s.queryRow(ctx, tx, "SELECT content_digest FROM versions WHERE app_id = ? AND version = ?", appID, v.Version).Scan(&digest)
		if err == nil {
			return errVersionExists
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look up %s: %w", what, err)
		}
		var createdBy any
		if v.CreatedBy != 0 {
			createdBy = v.CreatedBy
		}
		err = s.queryRow(ctx, tx, `INSERT INTO versions (app_id, version, content_digest, package_digest, signer, size, model,
	import_id, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			appID, v.Version, v.ContentDigest, v.PackageDigest, v.Signer, v.Size, v.Model, v.ImportID, createdBy, dbTime(at)).Scan(&versionID)
		switch violation(err) {
		case uniqueViolation: // recorded meanwhile by a concurrent call
			return errVersionExists
		case foreignKeyViolation:
			return fmt.Errorf("record %s: creating user %d: %w", what, v.CreatedBy, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert %s: %w", what, err)
		}
		for i, im := range v.Images {
			if _, err := s.exec(ctx, tx, "INSERT INTO version_images (version_id, position, name, target, digest) VALUES (?, ?, ?, ?, ?)",
				versionID, i, im.Name, im.Target, im.Digest); err != nil {
				if violation(err) == uniqueViolation {
					return fmt.Errorf("record %s: image %q is listed twice", what, im.Name)
				}
				return fmt.Errorf("record %s: insert image %q: %w", what, im.Name, err)
			}
		}
		latest, err := s.latestVersion(ctx, tx, appID)
		if err != nil {
			return err
		}
		if latest == v.Version {
			_, err = s.exec(ctx, tx, "UPDATE apps SET name = ?, description = ?, updated_at = ? WHERE id = ?",
				app.Name, app.Description, dbTime(at), appID)
		} else {
			_, err = s.exec(ctx, tx, "UPDATE apps SET updated_at = ? WHERE id = ?", dbTime(at), appID)
		}
		if err != nil {
			return fmt.Errorf("update app %q: %w", app.Key, err)
		}
		return nil
	})
	if errors.Is(err, errVersionExists) {
		return false, s.sameVersion(ctx, app.Key, v)
	}
	if err != nil {
		return false, err
	}
	v.ID, v.AppID, v.AppKey, v.CreatedAt = versionID, appID, app.Key, at
	return true, nil
}

// ensureApp returns the ID of the app with app.Key, creating it for teamID if it is missing, and refuses an app
// owned by another team.
func (s *Store) ensureApp(ctx context.Context, tx *sql.Tx, teamID int64, app App, at time.Time) (int64, error) {
	_, err := s.exec(ctx, tx, `INSERT INTO apps (app_key, name, description, team_id, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app_key) DO NOTHING`, app.Key, app.Name, app.Description, teamID, dbTime(at), dbTime(at))
	if violation(err) == foreignKeyViolation {
		return 0, fmt.Errorf("create app %q: team %d: %w", app.Key, teamID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("create app %q: %w", app.Key, err)
	}
	var id, owner int64
	err = s.queryRow(ctx, tx, "SELECT id, team_id FROM apps WHERE app_key = ?", app.Key).Scan(&id, &owner)
	if err != nil {
		return 0, fmt.Errorf("look up app %q: %w", app.Key, err)
	}
	if owner != teamID {
		return 0, &ConflictError{What: "app", Key: app.Key,
			Detail: "the key belongs to another team; only that team can import versions of it (choose another app key)"}
	}
	return id, nil
}

// sameVersion decides, after RecordVersion found v already recorded, whether that is a no-op (same content) or a
// conflict (other content).
func (s *Store) sameVersion(ctx context.Context, appKey string, v *Version) error {
	var digest string
	err := s.queryRow(ctx, s.db, `SELECT v.content_digest FROM versions v JOIN apps a ON a.id = v.app_id
WHERE a.app_key = ? AND v.version = ?`, appKey, v.Version).Scan(&digest)
	if err != nil {
		return fmt.Errorf("look up recorded version %s of app %q: %w", v.Version, appKey, err)
	}
	if digest != v.ContentDigest {
		return &ConflictError{What: "version", Key: appKey + "@" + v.Version,
			Detail: fmt.Sprintf("already recorded with other content (%s, not %s); versions are immutable: give the changed app a new version number",
				digest, v.ContentDigest)}
	}
	return nil
}
