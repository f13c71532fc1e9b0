package api

import (
	"encoding/json"
	"time"
)

// Install states. "degraded" is computed from the cluster: a ready install whose components are not all ready now.
const (
	StateDeploying    = "deploying"
	StateReady        = "ready"
	StateDegraded     = "degraded"
	StateFailed       = "failed"
	StateRolledBack   = "rolled-back"
	StateUninstalling = "uninstalling"
)

// Values are what the person installing gives on top of the app model. They are kept with each revision; an upgrade
// without values keeps the previous revision's.
type Values struct {
	// Env overrides per component: component -> variable -> value. They win over the model's env.
	Env map[string]map[string]string `json:"env,omitempty"`
	// Replicas per component.
	Replicas map[string]int `json:"replicas,omitempty"`
	// Domains of external http ports: "component/port-name" -> host name.
	Domains map[string]string `json:"domains,omitempty"`
}

// NewInstall is the body of POST /teams/{team}/installs.
type NewInstall struct {
	// Name of the install: a DNS label, unique in the team. Default: the app key.
	Name string `json:"name,omitempty"`
	App  string `json:"app"`
	// Version to install. Default: the app's latest version.
	Version string `json:"version,omitempty"`
	// Cluster to install on. Default: "local".
	Cluster string  `json:"cluster,omitempty"`
	Values  *Values `json:"values,omitempty"`
}

// Upgrade is the body of POST /teams/{team}/installs/{install}/upgrade.
type Upgrade struct {
	// Version to upgrade (or downgrade) to. Default: the app's latest version.
	Version string `json:"version,omitempty"`
	// Values replace the current ones when given; when left out the current ones are kept.
	Values *Values `json:"values,omitempty"`
	// DryRun previews the change: the per-component diff and the API server's dry-run verdict. Nothing changes.
	DryRun bool `json:"dryRun,omitempty"`
}

// Rollback is the body of POST /teams/{team}/installs/{install}/rollback.
type Rollback struct {
	// Revision to go back to. Default: the last succeeded revision before the deployed one.
	Revision int `json:"revision,omitempty"`
}

// Install is an app version placed in a team's namespace on a cluster.
type Install struct {
	Name      string    `json:"name"`
	Team      string    `json:"team"`
	Cluster   string    `json:"cluster"`
	Namespace string    `json:"namespace"`
	App       string    `json:"app"`
	Version   string    `json:"version,omitempty"` // of the deployed revision
	Revision  int       `json:"revision"`          // the newest revision
	Deployed  int       `json:"deployed,omitempty"`
	State     string    `json:"state"`
	Message   string    `json:"message,omitempty"`
	CreatedBy string    `json:"createdBy,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Revision is one change of an install: what was applied, why, by whom, and how it ended.
type Revision struct {
	Number     int        `json:"number"`
	Version    string     `json:"version"`
	Reason     string     `json:"reason"` // install, upgrade, rollback, auto-rollback
	From       int        `json:"from,omitempty"`
	Values     Values     `json:"values"`
	Digest     string     `json:"digest"` // of the rendered object set
	Outcome    string     `json:"outcome"`
	Message    string     `json:"message,omitempty"`
	CreatedBy  string     `json:"createdBy,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// Change answers an install, upgrade or rollback: the install and the revision that was started. The revision
// runs in the background; follow it with the install's status.
type Change struct {
	Install  Install  `json:"install"`
	Revision Revision `json:"revision"`
}

// InstallStatus is an install as the cluster shows it now.
type InstallStatus struct {
	Install    Install           `json:"install"`
	State      string            `json:"state"` // the stored state, or degraded
	Components []ComponentStatus `json:"components"`
	Events     []Event           `json:"events"`
}

// ComponentStatus is one component's workload and pods.
type ComponentStatus struct {
	Name     string      `json:"name"`
	Kind     string      `json:"kind"` // Deployment or StatefulSet
	Workload string      `json:"workload"`
	Desired  int         `json:"desired"`
	Ready    int         `json:"ready"`
	Updated  int         `json:"updated"`
	Pods     []PodStatus `json:"pods"`
}

// PodStatus is one pod of a component.
type PodStatus struct {
	Name     string `json:"name"`
	Phase    string `json:"phase"`
	Ready    bool   `json:"ready"`
	Restarts int    `json:"restarts"`
	Node     string `json:"node,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// Event is a Kubernetes event about one of the install's objects or pods.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // Normal or Warning
	Object  string    `json:"object"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int       `json:"count,omitempty"`
}

// Verdict is the API server's dry-run answer for one object.
type Verdict struct {
	Object string `json:"object"` // Kind/name
	Error  string `json:"error,omitempty"`
}

// Plan answers an upgrade dry run: what would change, per component, and whether the API server accepts every
// object. Changes is the deployer's change list (render.Changes as JSON).
type Plan struct {
	Install     string          `json:"install"`
	FromVersion string          `json:"fromVersion,omitempty"`
	ToVersion   string          `json:"toVersion"`
	Changes     json.RawMessage `json:"changes"`
	Verdicts    []Verdict       `json:"verdicts"`
	Accepted    bool            `json:"accepted"` // every object passed the API server's dry run
}

// Uninstalled answers DELETE /teams/{team}/installs/{install}: the volumes left in the namespace (none when data
// deletion was asked for).
type Uninstalled struct {
	Install     string   `json:"install"`
	KeptVolumes []string `json:"keptVolumes"`
}
