// Package deploy runs app versions on Kubernetes clusters. It records each change as a revision in the store, applies
// the revision's rendered objects with server-side apply in start order (each component after what it depends on is
// ready), waits on rollouts through informers, prunes what the new revision no longer has (never volumes, unless data
// deletion is asked for), and rolls back to the exact previous object set when the health gate fails. It also reports
// status, events and logs, and resumes revisions that a crash left in progress.
//
// The work of a revision is split in two: the request methods (Install, Upgrade, Rollback) check the request and
// record a pending revision, refusing a second change of the same install while one is pending; Run then carries a
// pending revision through to its outcome. The server runs Run in the background and, at start, for every revision
// that Pending returns.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/wutong-paas/wutong-offline/platform/store"
)

// FieldManager is the server-side apply field manager of every object the deployer applies.
const FieldManager = "wutong"

// Defaults of Options.
const (
	DefaultComponentTimeout = 5 * time.Minute
	DefaultIngressClass     = "traefik"
	// DefaultNamespacePrefix names a team's namespace: PREFIX + team name.
	DefaultNamespacePrefix = "wt-"
)

// Cluster is a cluster the deployer can reach.
type Cluster struct {
	// Name is the cluster's name in the store ("local" for the one the platform runs in). Required.
	Name string
	// Config reaches its API server. Required.
	Config *rest.Config
}

// Options configure a Deployer. Zero values take the documented defaults.
type Options struct {
	// Store records installs and revisions. Required.
	Store *store.Store
	// Clusters are the clusters installs may name; each is registered in the store by New.
	Clusters []Cluster
	// ComponentTimeout is how long a component may take to become ready after it is applied before the revision
	// fails (and an upgrade is rolled back). Default DefaultComponentTimeout.
	ComponentTimeout time.Duration
	// IngressClass serves external http ports. Default DefaultIngressClass.
	IngressClass string
	// Domain is the base domain of external http ports that declare none (COMPONENT-INSTALL.NAMESPACE.DOMAIN); empty
	// gives them path-only rules.
	Domain string
	// NamespacePrefix names team namespaces: PREFIX + team name. Default DefaultNamespacePrefix.
	NamespacePrefix string
}

// Deployer deploys app versions. Make it with New and start its watches with Start.
type Deployer struct {
	opts     Options
	store    *store.Store
	clusters map[string]*cluster
	locks    sync.Map // install ID -> *sync.Mutex: one Run per install in this process
}

// cluster is one reachable cluster, with its clients and the informers the health gate and status read.
type cluster struct {
	name    string
	id      int64
	cs      kubernetes.Interface
	dyn     dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	watch   *watcher
	started bool
}

// New checks opts, makes clients for each cluster and registers the clusters in the store.
func New(ctx context.Context, opts Options) (*Deployer, error) {
	if opts.Store == nil {
		return nil, errors.New("deployer: no store")
	}
	if opts.ComponentTimeout <= 0 {
		opts.ComponentTimeout = DefaultComponentTimeout
	}
	if opts.IngressClass == "" {
		opts.IngressClass = DefaultIngressClass
	}
	if opts.NamespacePrefix == "" {
		opts.NamespacePrefix = DefaultNamespacePrefix
	}
	d := &Deployer{opts: opts, store: opts.Store, clusters: map[string]*cluster{}}
	for _, c := range opts.Clusters {
		if !labelRE.MatchString(c.Name) || c.Config == nil {
			return nil, fmt.Errorf("deployer: cluster %q: needs a DNS-label name and a config", c.Name)
		}
		cfg := rest.CopyConfig(c.Config)
		cfg.UserAgent = "wutong-deployer"
		if cfg.QPS == 0 {
			cfg.QPS, cfg.Burst = 100, 200
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: make clientset: %w", c.Name, err)
		}
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: make dynamic client: %w", c.Name, err)
		}
		row, err := opts.Store.EnsureCluster(ctx, c.Name, cfg.Host)
		if err != nil {
			return nil, fmt.Errorf("register cluster %s: %w", c.Name, err)
		}
		d.clusters[c.Name] = &cluster{name: c.Name, id: row.ID, cs: cs, dyn: dyn,
			mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))}
	}
	return d, nil
}

// Start starts each cluster's watches (Deployments, StatefulSets and pods that the deployer manages) and waits
// until their caches are filled. They stop when ctx ends.
func (d *Deployer) Start(ctx context.Context) error {
	for _, c := range d.clusters {
		if c.started {
			continue
		}
		c.watch = newWatcher(c.cs)
		if err := c.watch.start(ctx); err != nil {
			return fmt.Errorf("cluster %s: %w", c.name, err)
		}
		c.started = true
	}
	return nil
}

// Namespace is the namespace of a team's installs.
func (d *Deployer) Namespace(team string) string { return d.opts.NamespacePrefix + team }

// Clusters are the names of the clusters the deployer reaches.
func (d *Deployer) Clusters() []string {
	var out []string
	for n := range d.clusters {
		out = append(out, n)
	}
	return out
}

// NoClusterError reports an install naming a cluster the deployer cannot reach.
type NoClusterError struct{ Name string }

func (e *NoClusterError) Error() string {
	return fmt.Sprintf("cluster %q is not known to this server: start wutong serve with access to it (--kubeconfig, or inside the cluster)", e.Name)
}

func (d *Deployer) cluster(name string) (*cluster, error) {
	c, ok := d.clusters[name]
	if !ok {
		return nil, &NoClusterError{Name: name}
	}
	if !c.started {
		return nil, fmt.Errorf("cluster %s: the deployer was not started", name)
	}
	return c, nil
}

// lock serialises Run and Uninstall of one install within this process (the store serialises across processes).
func (d *Deployer) lock(installID int64) func() {
	m, _ := d.locks.LoadOrStore(installID, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// labelRE is a DNS label (RFC 1123), as install, cluster and component names are.
var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
