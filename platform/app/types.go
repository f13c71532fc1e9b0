// Package app is the platform's application model: the types of app.yaml (apiVersion wutong.io/v1alpha1, kind
// App), their strict YAML parsing with line numbers and field paths, validation that reports every problem at once,
// the canonical JSON form that app packages and the store carry (and whose sha256 is a version's content digest),
// and the JSON Schema that editors use (app.schema.json, generated from these types).
//
// An app is a set of components (one workload each, named stably across versions), app-level config groups
// injected as environment, and raw namespaced Kubernetes objects carried alongside. Fields left out take the
// defaults documented on each field; Parse applies them, and Canonical always writes them out.
package app

// The header of every app.yaml.
const (
	APIVersion = "wutong.io/v1alpha1"
	Kind       = "App"
)

// Values of the enumerated fields.
const (
	KindStateless = "stateless"
	KindStateful  = "stateful"

	ProtocolTCP  = "tcp"
	ProtocolUDP  = "udp"
	ProtocolHTTP = "http"
	ProtocolGRPC = "grpc"

	ExposeInternal = "internal"
	ExposeExternal = "external"

	ReadWriteOnce = "ReadWriteOnce"
	ReadWriteMany = "ReadWriteMany"
	ReadOnlyMany  = "ReadOnlyMany"

	TolerationEqual  = "Equal"
	TolerationExists = "Exists"
)

// Defaults applied to fields left out.
const (
	DefaultReplicas            = 1
	DefaultConfigFileMode      = "0644"
	DefaultPeriodSeconds       = 10
	DefaultTimeoutSeconds      = 1
	DefaultFailureThreshold    = 3
	DefaultHTTPPath            = "/"
	DefaultInitialDelaySeconds = 0
)

// App is an application: what app.yaml holds.
type App struct {
	// Always wutong.io/v1alpha1.
	APIVersion string `json:"apiVersion" yaml:"apiVersion" jsonschema:"required,enum=wutong.io/v1alpha1"`
	// Always App.
	Kind string `json:"kind" yaml:"kind" jsonschema:"required,enum=App"`
	// Stable identity of the app across versions: lowercase letters, digits and '-', at most 63, starting and
	// ending with a letter or digit. It names the app's images in the cluster registry.
	Key string `json:"key" yaml:"key" jsonschema:"required"`
	// Display name. Default: the key.
	Name string `json:"name" yaml:"name,omitempty"`
	// Version of this release: strict semantic version such as 1.2.0 or 2.0.0-rc.1, without a leading v.
	Version string `json:"version" yaml:"version" jsonschema:"required"`
	// What the app does, for people.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// CPU architectures the app runs on. Default: every architecture its images have.
	Arches []string `json:"arches,omitempty" yaml:"arches,omitempty" jsonschema:"uniqueItems=true,enum=amd64,enum=arm64,enum=loong64"`
	// The workloads of the app; at least one.
	Components []Component `json:"components" yaml:"components" jsonschema:"required,minItems=1"`
	// App-level configuration: named groups of key/value items, injected as environment variables into the
	// components named in injectInto.
	ConfigGroups []ConfigGroup `json:"configGroups,omitempty" yaml:"configGroups,omitempty"`
	// Raw namespaced Kubernetes objects applied with the app (each with apiVersion, kind and metadata.name; no
	// metadata.namespace). Cluster-scoped kinds such as Namespace or ClusterRole are refused.
	Resources []Object `json:"resources,omitempty" yaml:"resources,omitempty"`
}

// Object is a raw Kubernetes object, kept as decoded. In a valid app its numbers are json.Number, so that it
// survives Canonical and Decode exactly.
type Object map[string]any

// Component is one workload of an app: a Deployment (stateless) or StatefulSet (stateful) with its Service.
type Component struct {
	// Stable identity across versions: a DNS label (lowercase letters, digits and '-', at most 63, starting with a
	// letter). Renaming a component is declared with formerNames.
	Name string `json:"name" yaml:"name" jsonschema:"required"`
	// Names this component had in earlier versions, so that an upgrade keeps its volumes and identity.
	FormerNames []string `json:"formerNames,omitempty" yaml:"formerNames,omitempty" jsonschema:"uniqueItems=true"`
	// Container image reference with a tag or digest, such as example.com/demo/web:1.0.
	Image string `json:"image" yaml:"image" jsonschema:"required"`
	// Entrypoint override (the image's ENTRYPOINT is used when left out).
	Command []string `json:"command,omitempty" yaml:"command,omitempty"`
	// Arguments (the image's CMD is used when left out).
	Args []string `json:"args,omitempty" yaml:"args,omitempty"`
	// stateless (a Deployment) or stateful (a StatefulSet: stable names, one volume per replica). Default:
	// stateless.
	Kind string `json:"kind" yaml:"kind,omitempty" jsonschema:"enum=stateless,enum=stateful,default=stateless"`
	// Number of instances, 0 or more. Default: 1.
	Replicas *int `json:"replicas" yaml:"replicas,omitempty" jsonschema:"minimum=0,default=1"`
	// CPU and memory requests and limits.
	Resources Resources `json:"resources,omitzero" yaml:"resources,omitempty"`
	// Ports the component listens on.
	Ports []Port `json:"ports,omitempty" yaml:"ports,omitempty"`
	// Environment variables of the container. They win over injected config groups and connection info.
	Env []EnvVar `json:"env,omitempty" yaml:"env,omitempty"`
	// Environment variables that every component depending on this one receives, such as the host, port and
	// credentials to connect with.
	ConnectionInfo []EnvVar `json:"connectionInfo,omitempty" yaml:"connectionInfo,omitempty"`
	// Files mounted into the container.
	ConfigFiles []ConfigFile `json:"configFiles,omitempty" yaml:"configFiles,omitempty"`
	// Persistent volumes: declared here (name, mountPath, size) or mounted from another component (name, from,
	// mountPath).
	Volumes []Volume `json:"volumes,omitempty" yaml:"volumes,omitempty"`
	// Health checks.
	Probes Probes `json:"probes,omitzero" yaml:"probes,omitempty"`
	// Components of this app that start first and whose connection info this one receives as environment.
	DependsOn []string `json:"dependsOn,omitempty" yaml:"dependsOn,omitempty" jsonschema:"uniqueItems=true"`
	// Node labels the component's pods must run on.
	NodeSelector map[string]string `json:"nodeSelector,omitempty" yaml:"nodeSelector,omitempty"`
	// Node taints the component's pods tolerate.
	Tolerations []Toleration `json:"tolerations,omitempty" yaml:"tolerations,omitempty"`
	// CPU architectures this component runs on; a subset of the app's arches when those are given.
	Arches []string `json:"arches,omitempty" yaml:"arches,omitempty" jsonschema:"uniqueItems=true,enum=amd64,enum=arm64,enum=loong64"`
}

// Resources are a component's compute requests and limits.
type Resources struct {
	// What the scheduler reserves.
	Requests ResourceList `json:"requests,omitzero" yaml:"requests,omitempty"`
	// The most the container may use; each at least the request.
	Limits ResourceList `json:"limits,omitzero" yaml:"limits,omitempty"`
}

// ResourceList holds Kubernetes quantities.
type ResourceList struct {
	// CPU as a Kubernetes quantity, such as 500m or 2.
	CPU string `json:"cpu,omitempty" yaml:"cpu,omitempty"`
	// Memory as a Kubernetes quantity, such as 256Mi or 2Gi.
	Memory string `json:"memory,omitempty" yaml:"memory,omitempty"`
}

// Port is a port a component listens on.
type Port struct {
	// Name of the port (an IANA service name: at most 15 lowercase letters, digits and '-'). Default:
	// PROTOCOL-PORT, such as http-8080.
	Name string `json:"name" yaml:"name,omitempty"`
	// Port number, 1 to 65535.
	Port int `json:"port" yaml:"port" jsonschema:"required,minimum=1,maximum=65535"`
	// tcp, udp, http or grpc. Default: tcp.
	Protocol string `json:"protocol" yaml:"protocol,omitempty" jsonschema:"enum=tcp,enum=udp,enum=http,enum=grpc,default=tcp"`
	// internal (reachable inside the cluster) or external (reachable from outside: http ports through the
	// gateway, others on a node port). Default: internal.
	Expose string `json:"expose" yaml:"expose,omitempty" jsonschema:"enum=internal,enum=external,default=internal"`
	// Host name an external http port is served on. Default: one the platform assigns.
	Domain string `json:"domain,omitempty" yaml:"domain,omitempty"`
	// URL path prefix an external http port is served under, starting with /. Default: /.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
}

// EnvVar is an environment variable.
type EnvVar struct {
	// Variable name: letters, digits and '_', not starting with a digit.
	Name string `json:"name" yaml:"name" jsonschema:"required"`
	// Value; numbers and booleans are taken as written.
	Value string `json:"value" yaml:"value"`
}

// ConfigFile is a file mounted into a component's container, given inline or read from a file next to app.yaml.
type ConfigFile struct {
	// Absolute path of the file in the container.
	Path string `json:"path" yaml:"path" jsonschema:"required"`
	// Content of the file (UTF-8 text, at most 1 MiB).
	Content string `json:"content,omitempty" yaml:"content,omitempty"`
	// Path of a file relative to the directory of app.yaml, read into content when the app is loaded. It may not
	// lead out of that directory.
	File string `json:"file,omitempty" yaml:"file,omitempty"`
	// Octal file mode such as 0644. Default: 0644.
	Mode string `json:"mode" yaml:"mode,omitempty" jsonschema:"default=0644"`
}

// Volume is a persistent volume of a component, or a mount of another component's volume (when From is set).
type Volume struct {
	// Name of the volume: a DNS label, unique in the component.
	Name string `json:"name" yaml:"name" jsonschema:"required"`
	// Absolute path the volume is mounted on.
	MountPath string `json:"mountPath" yaml:"mountPath" jsonschema:"required"`
	// Capacity as a Kubernetes quantity such as 10Gi. Required unless from is set.
	Size string `json:"size,omitempty" yaml:"size,omitempty"`
	// ReadWriteOnce, ReadWriteMany or ReadOnlyMany. Default: ReadWriteOnce. A volume other components mount must
	// be ReadWriteMany. Not allowed with from.
	AccessMode string `json:"accessMode,omitempty" yaml:"accessMode,omitempty" jsonschema:"enum=ReadWriteOnce,enum=ReadWriteMany,enum=ReadOnlyMany"`
	// Name of another component of the app whose volume of this name is mounted here.
	From string `json:"from,omitempty" yaml:"from,omitempty"`
}

// Probes are a component's health checks.
type Probes struct {
	// Restarts the container when it fails.
	Liveness *Probe `json:"liveness,omitempty" yaml:"liveness,omitempty"`
	// Takes the container out of its Service while it fails.
	Readiness *Probe `json:"readiness,omitempty" yaml:"readiness,omitempty"`
}

// Probe is one health check: exactly one of http, tcp and exec.
type Probe struct {
	// An HTTP GET that must answer 2xx or 3xx.
	HTTP *HTTPProbe `json:"http,omitempty" yaml:"http,omitempty"`
	// A TCP connection that must open.
	TCP *TCPProbe `json:"tcp,omitempty" yaml:"tcp,omitempty"`
	// A command in the container that must exit 0.
	Exec *ExecProbe `json:"exec,omitempty" yaml:"exec,omitempty"`
	// Seconds after the container starts before the first check. Default: 0.
	InitialDelaySeconds int `json:"initialDelaySeconds" yaml:"initialDelaySeconds,omitempty" jsonschema:"minimum=0,default=0"`
	// Seconds between checks; 0 means the default, 10.
	PeriodSeconds int `json:"periodSeconds" yaml:"periodSeconds,omitempty" jsonschema:"minimum=0,default=10"`
	// Seconds a check may take; 0 means the default, 1.
	TimeoutSeconds int `json:"timeoutSeconds" yaml:"timeoutSeconds,omitempty" jsonschema:"minimum=0,default=1"`
	// Failures in a row that count as failed; 0 means the default, 3.
	FailureThreshold int `json:"failureThreshold" yaml:"failureThreshold,omitempty" jsonschema:"minimum=0,default=3"`
}

// HTTPProbe checks a component over HTTP.
type HTTPProbe struct {
	// One of the component's ports.
	Port int `json:"port" yaml:"port" jsonschema:"required,minimum=1,maximum=65535"`
	// Request path, starting with /. Default: /.
	Path string `json:"path" yaml:"path,omitempty" jsonschema:"default=/"`
}

// TCPProbe checks that a port accepts connections.
type TCPProbe struct {
	// One of the component's ports.
	Port int `json:"port" yaml:"port" jsonschema:"required,minimum=1,maximum=65535"`
}

// ExecProbe runs a command in the container.
type ExecProbe struct {
	// The command and its arguments (no shell unless given, e.g. [sh, -c, "..."]).
	Command []string `json:"command" yaml:"command" jsonschema:"required,minItems=1"`
}

// Toleration lets a component's pods run on nodes with a matching taint.
type Toleration struct {
	// Taint key; empty with operator Exists matches every taint.
	Key string `json:"key,omitempty" yaml:"key,omitempty"`
	// Equal (key and value match) or Exists (key matches). Default: Equal.
	Operator string `json:"operator" yaml:"operator,omitempty" jsonschema:"enum=Equal,enum=Exists,default=Equal"`
	// Taint value, with operator Equal.
	Value string `json:"value,omitempty" yaml:"value,omitempty"`
	// NoSchedule, PreferNoSchedule or NoExecute; empty matches all effects.
	Effect string `json:"effect,omitempty" yaml:"effect,omitempty" jsonschema:"enum=,enum=NoSchedule,enum=PreferNoSchedule,enum=NoExecute"`
}

// ConfigGroup is app-level configuration: key/value items, given to components as environment variables.
type ConfigGroup struct {
	// Name of the group: a DNS label, unique in the app.
	Name string `json:"name" yaml:"name" jsonschema:"required"`
	// The items; each key is an environment variable name.
	Items []ConfigItem `json:"items" yaml:"items" jsonschema:"required,minItems=1"`
	// Components that receive the items as environment variables; ["*"] for all. Default: none.
	InjectInto []string `json:"injectInto,omitempty" yaml:"injectInto,omitempty" jsonschema:"uniqueItems=true"`
	// Keep the items in a Kubernetes Secret instead of a ConfigMap (for passwords and keys). Default: false.
	Secret bool `json:"secret,omitempty" yaml:"secret,omitempty"`
}

// ConfigItem is one key/value item of a config group.
type ConfigItem struct {
	// Key: an environment variable name (letters, digits and '_', not starting with a digit).
	Key string `json:"key" yaml:"key" jsonschema:"required"`
	// Value; numbers and booleans are taken as written.
	Value string `json:"value" yaml:"value"`
}
