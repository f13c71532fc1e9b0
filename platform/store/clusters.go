package store

import (
	"context"
	"fmt"
	"regexp"
	"time"
)

// Cluster is a Kubernetes cluster the platform deploys to. The local (in-cluster) one is registered at start; there
// may be more later.
type Cluster struct {
	ID        int64
	Name      string // unique, a DNS label
	Server    string // API server URL, for people
	CreatedAt time.Time
}

// dnsLabel is an RFC 1123 label, as cluster and install names are.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// checkLabel reports why name is not a DNS label, naming it as what.
func checkLabel(what, name string) error {
	if !dnsLabel.MatchString(name) {
		return fmt.Errorf("%s name %q is not a DNS label (lowercase letters, digits and '-', at most 63, "+
			"starting and ending with a letter or digit)", what, name)
	}
	return nil
}

const clusterColumns = "id, name, server, created_at"

func scanCluster(row interface{ Scan(...any) error }) (*Cluster, error) {
	var c Cluster
	var created int64
	if err := row.Scan(&c.ID, &c.Name, &c.Server, &created); err != nil {
		return nil, err
	}
	c.CreatedAt = goTime(created)
	return &c, nil
}

// EnsureCluster registers the cluster called name with server, or updates the server of the one already
// registered, and returns the row. The name must be a DNS label.
func (s *Store) EnsureCluster(ctx context.Context, name, server string) (*Cluster, error) {
	if err := checkLabel("cluster", name); err != nil {
		return nil, fmt.Errorf("ensure cluster: %w", err)
	}
	c, err := scanCluster(s.queryRow(ctx, s.db, `INSERT INTO clusters (name, server, created_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET server = excluded.server RETURNING `+clusterColumns, name, server, dbTime(now())))
	if err != nil {
		return nil, fmt.Errorf("ensure cluster %q: %w", name, err)
	}
	return c, nil
}

// Cluster returns the cluster called name.
func (s *Store) Cluster(ctx context.Context, name string) (*Cluster, error) {
	c, err := scanCluster(s.queryRow(ctx, s.db, "SELECT "+clusterColumns+" FROM clusters WHERE name = ?", name))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("cluster %q", name))
	}
	return c, nil
}

// Clusters returns every cluster, sorted by name.
func (s *Store) Clusters(ctx context.Context) ([]Cluster, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+clusterColumns+" FROM clusters ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	defer rows.Close()
	out := []Cluster{}
	for rows.Next() {
		c, err := scanCluster(rows)
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	return out, nil
}
