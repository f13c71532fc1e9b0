package app

import (
	"math"
	"strings"
	"testing"
)

// base is a valid app that each validation case breaks in one way.
func base() *App {
	return &App{Key: "demo", Version: "1.0.0", Components: []Component{
		{
			Name:      "web",
			Image:     "example.com/demo/web:1.0",
			Ports:     []Port{{Port: 8080, Protocol: ProtocolHTTP, Expose: ExposeExternal}},
			DependsOn: []string{"db"},
		},
		{
			Name:           "db",
			Kind:           KindStateful,
			Image:          "example.com/demo/db:1.0",
			Ports:          []Port{{Port: 5432}},
			Volumes:        []Volume{{Name: "data", MountPath: "/data", Size: "1Gi"}},
			ConnectionInfo: []EnvVar{{Name: "DB_HOST", Value: "db"}},
		},
	}}
}

func ptr[T any](v T) *T { return &v }

func TestValidate(t *testing.T) {
	if err := base().Validate(); err != nil {
		t.Fatalf("the base app is invalid: %v", err)
	}
	web := func(a *App) *Component { return &a.Components[0] }
	db := func(a *App) *Component { return &a.Components[1] }
	cache := Component{Name: "cache", Image: "example.com/demo/cache:1.0", ConnectionInfo: []EnvVar{{Name: "DB_HOST", Value: "cache"}}}
	obj := func(kind, name string) Object {
		return Object{"apiVersion": "v1", "kind": kind, "metadata": map[string]any{"name": name}}
	}
	cases := []struct {
		name       string
		mutate     func(a *App)
		path, msg  string
		fixContain string
	}{
		// The app.
		{"apiVersion", func(a *App) { a.APIVersion = "wutong.io/v1" }, "apiVersion", `is "wutong.io/v1", expected "wutong.io/v1alpha1"`, ""},
		{"kind", func(a *App) { a.Kind = "Application" }, "kind", `is "Application", expected "App"`, ""},
		{"key missing", func(a *App) { a.Key = "" }, "key", "is missing", ""},
		{"key upper case", func(a *App) { a.Key = "Demo" }, "key", `"Demo" is not a valid app key`, ""},
		{"key trailing dash", func(a *App) { a.Key = "demo-" }, "key", `"demo-" is not a valid app key`, ""},
		{"key too long", func(a *App) { a.Key = strings.Repeat("a", 64) }, "key", "is not a valid app key", ""},
		{"name too long", func(a *App) { a.Name = strings.Repeat("名", 129) }, "name", "longer than 128", ""},
		{"version missing", func(a *App) { a.Version = "" }, "version", "is missing", ""},
		{"version leading v", func(a *App) { a.Version = "v1.0.0" }, "version", `"v1.0.0" is not a strict semantic version`, "drop the leading v: 1.0.0"},
		{"version short", func(a *App) { a.Version = "1.0" }, "version", `"1.0" is not a strict semantic version`, ""},
		{"arch unknown", func(a *App) { a.Arches = []string{"amd64", "x86_64"} }, "arches[1]", `unknown arch "x86_64"`, ""},
		{"arch twice", func(a *App) { a.Arches = []string{"arm64", "arm64"} }, "arches[1]", "arm64 is listed twice", ""},
		{"no components", func(a *App) { a.Components = nil }, "components", "lists no component", ""},

		// Component names.
		{"name missing", func(a *App) { web(a).Name = ""; web(a).Ports = nil }, "components[0].name", "is missing", ""},
		{"name upper case", func(a *App) { web(a).Name = "Web" }, "components[0].name", `"Web" is not a valid component name`, ""},
		{"name starts with digit", func(a *App) { web(a).Name = "1web" }, "components[0].name", `"1web" is not a valid component name`, "Service"},
		{"name twice", func(a *App) { web(a).Name = "db"; web(a).DependsOn = nil }, "components[1].name", `component name "db" is already used by components[0]`, ""},
		{"former name is own", func(a *App) { web(a).FormerNames = []string{"web"} }, "components[web].formerNames[0]", `"web" is this component's own name`, ""},
		{"former name invalid", func(a *App) { web(a).FormerNames = []string{"Front_End"} }, "components[web].formerNames[0]", "is not a valid component name", ""},
		{"former name of another", func(a *App) { web(a).FormerNames = []string{"db"} }, "components[web].formerNames[0]", `"db" is already the name or a former name of components[db]`, ""},
		{"former name twice", func(a *App) { web(a).FormerNames = []string{"old"}; db(a).FormerNames = []string{"old"} },
			"components[db].formerNames[0]", `"old" is already the name or a former name of components[web].formerNames`, ""},

		// Image, kind, replicas, resources.
		{"image missing", func(a *App) { web(a).Image = "" }, "components[web].image", "is missing", ""},
		{"image invalid", func(a *App) { web(a).Image = "Example.com/Web:1" }, "components[web].image", "is not a valid image reference", ""},
		{"image untagged", func(a *App) { web(a).Image = "example.com/demo/web" }, "components[web].image", "has no tag or digest", ""},
		{"kind unknown", func(a *App) { web(a).Kind = "daemon" }, "components[web].kind", `unknown kind "daemon"`, ""},
		{"replicas negative", func(a *App) { web(a).Replicas = ptr(-1) }, "components[web].replicas", "is -1", ""},
		{"cpu invalid", func(a *App) { web(a).Resources.Requests.CPU = "half" }, "components[web].resources.requests.cpu", `"half" is not a quantity`, ""},
		{"memory negative", func(a *App) { web(a).Resources.Limits.Memory = "-1Gi" }, "components[web].resources.limits.memory", `"-1Gi" is negative`, ""},
		{"limit below request", func(a *App) {
			web(a).Resources = Resources{Requests: ResourceList{CPU: "1"}, Limits: ResourceList{CPU: "500m"}}
		},
			"components[web].resources.limits.cpu", "limit 500m is less than request 1", ""},

		// Ports.
		{"port zero", func(a *App) { web(a).Ports[0].Port = 0 }, "components[web].ports[0].port", "port 0 is out of range", ""},
		{"port twice", func(a *App) { web(a).Ports = append(web(a).Ports, Port{Name: "other", Port: 8080}) }, "components[web].ports[1].port", "port 8080 is listed twice", ""},
		{"protocol unknown", func(a *App) { db(a).Ports[0].Protocol = "sctp" }, "components[db].ports[0].protocol", `unknown protocol "sctp"`, ""},
		{"expose unknown", func(a *App) { db(a).Ports[0].Expose = "public" }, "components[db].ports[0].expose", `unknown expose "public"`, ""},
		{"port name invalid", func(a *App) { db(a).Ports[0].Name = "postgres-primary-port" }, "components[db].ports[0].name", "is not a valid port name", ""},
		{"port name digits only", func(a *App) { db(a).Ports[0].Name = "5432" }, "components[db].ports[0].name", `"5432" is not a valid port name`, ""},
		{"port name twice", func(a *App) { db(a).Ports = append(db(a).Ports, Port{Name: "tcp-5432", Port: 5433}) }, "components[db].ports[1].name", `port name "tcp-5432" is used twice`, ""},
		{"domain on tcp", func(a *App) { db(a).Ports[0].Domain = "db.example.com" }, "components[db].ports[0].domain", "is only for http ports", ""},
		{"path on internal http", func(a *App) { web(a).Ports[0].Expose = ExposeInternal; web(a).Ports[0].Path = "/api" }, "components[web].ports[0].path", "is only for external ports", ""},
		{"domain invalid", func(a *App) { web(a).Ports[0].Domain = "https://shop.example.com" }, "components[web].ports[0].domain", "is not a valid domain", ""},
		{"route path relative", func(a *App) { web(a).Ports[0].Path = "api" }, "components[web].ports[0].path", `"api" does not start with /`, ""},
		{"route twice", func(a *App) {
			web(a).Ports[0].Domain = "demo.example.com"
			db(a).Ports = append(db(a).Ports, Port{Port: 8081, Protocol: ProtocolHTTP, Expose: ExposeExternal, Domain: "demo.example.com", Path: "/"})
		}, "components[db].ports[1].domain", "demo.example.com/ is already served by components[web].ports[0]", ""},

		// Env and connection info.
		{"env name missing", func(a *App) { web(a).Env = []EnvVar{{Value: "x"}} }, "components[web].env[0].name", "is missing", ""},
		{"env name invalid", func(a *App) { web(a).Env = []EnvVar{{Name: "LOG-LEVEL"}} }, "components[web].env[0].name", `"LOG-LEVEL" is not a valid environment variable name`, ""},
		{"env name twice", func(a *App) { web(a).Env = []EnvVar{{Name: "A"}, {Name: "A"}} }, "components[web].env[1].name", "A is set twice", ""},
		{"connection info invalid", func(a *App) { db(a).ConnectionInfo[0].Name = "1HOST" }, "components[db].connectionInfo[0].name", `"1HOST" is not a valid environment variable name`, ""},

		// Config files.
		{"config path relative", func(a *App) { web(a).ConfigFiles = []ConfigFile{{Path: "etc/app.conf"}} }, "components[web].configFiles[0].path", `"etc/app.conf" is not an absolute path below /`, ""},
		{"config path unclean", func(a *App) { web(a).ConfigFiles = []ConfigFile{{Path: "/etc/../app.conf"}} }, "components[web].configFiles[0].path", "is not a clean path", "/app.conf"},
		{"config path twice", func(a *App) { web(a).ConfigFiles = []ConfigFile{{Path: "/a"}, {Path: "/a"}} }, "components[web].configFiles[1].path", "/a is listed twice", ""},
		{"config path is a mount", func(a *App) { db(a).ConfigFiles = []ConfigFile{{Path: "/data"}} }, "components[db].configFiles[0].path", "/data is also a volume's mount path", ""},
		{"config content and file", func(a *App) { web(a).ConfigFiles = []ConfigFile{{Path: "/a", Content: "x", File: "a"}} }, "components[web].configFiles[0]", "has both content and file", ""},
		{"config file not read", func(a *App) { web(a).ConfigFiles = []ConfigFile{{Path: "/a", File: "a.conf"}} }, "components[web].configFiles[0].file", `"a.conf" is not read`, "app.Load"},
		{"config too large", func(a *App) { web(a).ConfigFiles = []ConfigFile{{Path: "/a", Content: strings.Repeat("x", 1<<20+1)}} }, "components[web].configFiles[0].content", "larger than 1048576 bytes", ""},
		{"config not text", func(a *App) { web(a).ConfigFiles = []ConfigFile{{Path: "/a", Content: "\xff\xfe"}} }, "components[web].configFiles[0].content", "is not UTF-8 text", ""},
		{"config mode", func(a *App) { web(a).ConfigFiles = []ConfigFile{{Path: "/a", Mode: "0800"}} }, "components[web].configFiles[0].mode", `"0800" is not an octal file mode`, ""},

		// Volumes.
		{"volume name missing", func(a *App) { db(a).Volumes[0].Name = "" }, "components[db].volumes[0].name", "is missing", ""},
		{"volume name invalid", func(a *App) { db(a).Volumes[0].Name = "Data" }, "components[db].volumes[0].name", `"Data" is not a valid volume name`, ""},
		{"volume twice", func(a *App) {
			db(a).Volumes = append(db(a).Volumes, Volume{Name: "data", MountPath: "/more", Size: "1Gi"})
		}, "components[db].volumes[1].name", `volume "data" is listed twice`, ""},
		{"mount path relative", func(a *App) { db(a).Volumes[0].MountPath = "data" }, "components[db].volumes[0].mountPath", `"data" is not an absolute path below /`, ""},
		{"mount path root", func(a *App) { db(a).Volumes[0].MountPath = "/" }, "components[db].volumes[0].mountPath", `"/" is not an absolute path below /`, ""},
		{"mount path twice", func(a *App) {
			db(a).Volumes = append(db(a).Volumes, Volume{Name: "logs", MountPath: "/data", Size: "1Gi"})
		}, "components[db].volumes[1].mountPath", "/data is already a mount path", ""},
		{"size missing", func(a *App) { db(a).Volumes[0].Size = "" }, "components[db].volumes[0].size", "is missing", ""},
		{"size invalid", func(a *App) { db(a).Volumes[0].Size = "10 GB" }, "components[db].volumes[0].size", `"10 GB" is not a quantity`, ""},
		{"size zero", func(a *App) { db(a).Volumes[0].Size = "0" }, "components[db].volumes[0].size", `"0" is not more than zero`, ""},
		{"access mode", func(a *App) { db(a).Volumes[0].AccessMode = "RWX" }, "components[db].volumes[0].accessMode", `unknown access mode "RWX"`, ""},
		{"shared from self other name", func(a *App) { db(a).Volumes = append(db(a).Volumes, Volume{Name: "x", From: "db", MountPath: "/x"}) }, "components[db].volumes[1].from", "names this component itself", ""},
		{"shared from unknown", func(a *App) { web(a).Volumes = []Volume{{Name: "data", From: "dbb", MountPath: "/data"}} }, "components[web].volumes[0].from", `"dbb" is not a component of this app`, `did you mean "db"?`},
		{"shared volume missing", func(a *App) { web(a).Volumes = []Volume{{Name: "logs", From: "db", MountPath: "/logs"}} }, "components[web].volumes[0].name", `component db has no volume "logs"`, ""},
		{"shared volume not RWX", func(a *App) { web(a).Volumes = []Volume{{Name: "data", From: "db", MountPath: "/data"}} },
			"components[web].volumes[0].from", "volume data of db is ReadWriteOnce; a volume other components mount must be ReadWriteMany", "accessMode: ReadWriteMany on components[db].volumes[0]"},
		{"shared with size", func(a *App) {
			db(a).Volumes[0].AccessMode = ReadWriteMany
			web(a).Volumes = []Volume{{Name: "data", From: "db", MountPath: "/data", Size: "1Gi"}}
		}, "components[web].volumes[0].size", "is set on a volume mounted from another component", ""},
		{"shared with access mode", func(a *App) {
			db(a).Volumes[0].AccessMode = ReadWriteMany
			web(a).Volumes = []Volume{{Name: "data", From: "db", MountPath: "/data", AccessMode: ReadOnlyMany}}
		}, "components[web].volumes[0].accessMode", "is set on a volume mounted from another component", ""},

		// Probes.
		{"probe without check", func(a *App) { web(a).Probes.Liveness = &Probe{} }, "components[web].probes.liveness", "has 0 kinds of check", ""},
		{"probe with two checks", func(a *App) {
			web(a).Probes.Readiness = &Probe{HTTP: &HTTPProbe{Port: 8080}, Exec: &ExecProbe{Command: []string{"true"}}}
		}, "components[web].probes.readiness", "has 2 kinds of check", ""},
		{"probe port unknown", func(a *App) { web(a).Probes.Liveness = &Probe{HTTP: &HTTPProbe{Port: 9090}} }, "components[web].probes.liveness.http.port", "port 9090 is not one of the component's ports", ""},
		{"probe udp port", func(a *App) {
			db(a).Ports = append(db(a).Ports, Port{Port: 5353, Protocol: ProtocolUDP})
			db(a).Probes.Readiness = &Probe{TCP: &TCPProbe{Port: 5353}}
		}, "components[db].probes.readiness.tcp.port", "port 5353 is udp; a tcp check needs a TCP port", ""},
		{"probe path relative", func(a *App) { web(a).Probes.Liveness = &Probe{HTTP: &HTTPProbe{Port: 8080, Path: "healthz"}} }, "components[web].probes.liveness.http.path", `"healthz" does not start with /`, ""},
		{"probe exec empty", func(a *App) { db(a).Probes.Liveness = &Probe{Exec: &ExecProbe{}} }, "components[db].probes.liveness.exec.command", "is empty", ""},
		{"probe period negative", func(a *App) { db(a).Probes.Liveness = &Probe{TCP: &TCPProbe{Port: 5432}, PeriodSeconds: -5} }, "components[db].probes.liveness.periodSeconds", "is -5", ""},

		// dependsOn.
		{"depends on unknown", func(a *App) { web(a).DependsOn = []string{"dbs"} }, "components[web].dependsOn[0]", `"dbs" is not a component of this app`, `did you mean "db"?`},
		{"depends on self", func(a *App) { web(a).DependsOn = []string{"web"} }, "components[web].dependsOn[0]", "names this component itself", ""},
		{"depends twice", func(a *App) { web(a).DependsOn = []string{"db", "db"} }, "components[web].dependsOn[1]", `"db" is listed twice`, ""},
		{"cycle of two", func(a *App) { db(a).DependsOn = []string{"web"} }, "components[db].dependsOn", "dependsOn has a cycle: db → web → db", ""},
		{"cycle of three", func(a *App) {
			c := cache
			c.DependsOn = []string{"web"}
			a.Components = append(a.Components, c)
			db(a).DependsOn = []string{"cache"}
			db(a).ConnectionInfo = nil
		}, "components[cache].dependsOn", "dependsOn has a cycle: cache → web → db → cache", ""},

		// Scheduling.
		{"node selector key", func(a *App) { web(a).NodeSelector = map[string]string{"-bad": "x"} }, `components[web].nodeSelector.-bad`, `"-bad" is not a valid label key`, ""},
		{"node selector value", func(a *App) { web(a).NodeSelector = map[string]string{"kubernetes.io/os": "linux os"} }, `components[web].nodeSelector["kubernetes.io/os"]`, `"linux os" is not a valid label value`, ""},
		{"toleration operator", func(a *App) { web(a).Tolerations = []Toleration{{Key: "k", Operator: "In"}} }, "components[web].tolerations[0].operator", `unknown operator "In"`, ""},
		{"toleration exists with value", func(a *App) { web(a).Tolerations = []Toleration{{Key: "k", Operator: TolerationExists, Value: "v"}} }, "components[web].tolerations[0].value", "is set with operator Exists", ""},
		{"toleration equal without key", func(a *App) { web(a).Tolerations = []Toleration{{Value: "v"}} }, "components[web].tolerations[0].key", "is missing", ""},
		{"toleration effect", func(a *App) { web(a).Tolerations = []Toleration{{Key: "k", Effect: "NoRun"}} }, "components[web].tolerations[0].effect", `unknown effect "NoRun"`, ""},
		{"toleration key", func(a *App) { web(a).Tolerations = []Toleration{{Key: "a b", Operator: TolerationExists}} }, "components[web].tolerations[0].key", `"a b" is not a valid taint key`, ""},
		{"component arch outside app", func(a *App) { a.Arches = []string{"amd64"}; web(a).Arches = []string{"arm64"} }, "components[web].arches[0]", "arm64 is not one of the app's arches (amd64)", ""},
		{"component arch unknown", func(a *App) { web(a).Arches = []string{"riscv64"} }, "components[web].arches[0]", `unknown arch "riscv64"`, ""},

		// Config groups and injected env.
		{"group name missing", func(a *App) { a.ConfigGroups = []ConfigGroup{{Items: []ConfigItem{{Key: "A"}}}} }, "configGroups[0].name", "is missing", ""},
		{"group name invalid", func(a *App) { a.ConfigGroups = []ConfigGroup{{Name: "DB", Items: []ConfigItem{{Key: "A"}}}} }, "configGroups[0].name", `"DB" is not a valid config group name`, ""},
		{"group twice", func(a *App) {
			a.ConfigGroups = []ConfigGroup{{Name: "g", Items: []ConfigItem{{Key: "A"}}}, {Name: "g", Items: []ConfigItem{{Key: "B"}}}}
		}, "configGroups[1].name", `config group "g" is defined twice`, ""},
		{"group without items", func(a *App) { a.ConfigGroups = []ConfigGroup{{Name: "g"}} }, "configGroups[g].items", "lists no item", ""},
		{"group key invalid", func(a *App) { a.ConfigGroups = []ConfigGroup{{Name: "g", Items: []ConfigItem{{Key: "a.b"}}}} }, "configGroups[g].items[0].key", `"a.b" is not a valid environment variable name`, ""},
		{"group key twice", func(a *App) { a.ConfigGroups = []ConfigGroup{{Name: "g", Items: []ConfigItem{{Key: "A"}, {Key: "A"}}}} }, "configGroups[g].items[1].key", `key "A" is in the group twice`, ""},
		{"inject into unknown", func(a *App) {
			a.ConfigGroups = []ConfigGroup{{Name: "g", Items: []ConfigItem{{Key: "A"}}, InjectInto: []string{"wbe"}}}
		}, "configGroups[g].injectInto[0]", `"wbe" is not a component of this app`, `did you mean "web"?`},
		{"inject into all and more", func(a *App) {
			a.ConfigGroups = []ConfigGroup{{Name: "g", Items: []ConfigItem{{Key: "A"}}, InjectInto: []string{"*", "web"}}}
		}, "configGroups[g].injectInto[0]", `"*" (all components) stands alone`, ""},
		{"env from two groups", func(a *App) {
			a.ConfigGroups = []ConfigGroup{
				{Name: "one", Items: []ConfigItem{{Key: "A", Value: "1"}}, InjectInto: []string{"*"}},
				{Name: "two", Items: []ConfigItem{{Key: "A", Value: "2"}}, InjectInto: []string{"db"}},
			}
		}, "components[db]", `environment variable A comes from both "one" (config group) and "two" (config group)`, ""},
		{"env from two dependencies", func(a *App) {
			a.Components = append(a.Components, cache)
			web(a).DependsOn = []string{"db", "cache"}
		}, "components[web]", `environment variable DB_HOST comes from both the connection info of "db" and the connection info of "cache"`, "set DB_HOST in this component's env"},

		// Raw objects.
		{"object apiVersion", func(a *App) { a.Resources = []Object{{"kind": "ConfigMap", "metadata": map[string]any{"name": "x"}}} }, "resources[0].apiVersion", "is missing", ""},
		{"object kind", func(a *App) { a.Resources = []Object{{"apiVersion": "v1", "metadata": map[string]any{"name": "x"}}} }, "resources[0].kind", "is missing", ""},
		{"object metadata", func(a *App) { a.Resources = []Object{{"apiVersion": "v1", "kind": "ConfigMap"}} }, "resources[0].metadata", "is missing", ""},
		{"object name", func(a *App) { a.Resources = []Object{obj("ConfigMap", "")} }, "resources[0].metadata.name", "is missing", ""},
		{"object name invalid", func(a *App) { a.Resources = []Object{obj("ConfigMap", "My_Config")} }, "resources[0].metadata.name", `"My_Config" is not a valid object name`, ""},
		{"object namespace", func(a *App) {
			a.Resources = []Object{{"apiVersion": "v1", "kind": "Secret", "metadata": Object{"name": "s", "namespace": "default"}}}
		}, "resources[0].metadata.namespace", "is set", "the app's namespace is chosen when it is installed"},
		{"object cluster-scoped", func(a *App) { a.Resources = []Object{obj("ClusterRole", "admin")} }, "resources[0].kind", "ClusterRole is cluster-scoped: an app lives in its team's namespace", ""},
		{"object twice", func(a *App) { a.Resources = []Object{obj("ConfigMap", "c"), obj("ConfigMap", "c")} }, "resources[1].metadata.name", `ConfigMap "c" is already defined by resources[0]`, ""},
		{"object not JSON", func(a *App) {
			a.Resources = []Object{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}, "x": math.NaN()}}
		},
			"resources[0]", "cannot be written as JSON", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := base()
			tc.mutate(a)
			err := a.Validate()
			if err == nil {
				t.Fatalf("Validate accepts it")
			}
			ve := validationError(t, err)
			if len(ve.Problems) != 1 {
				t.Fatalf("want one problem, got %d:\n%v", len(ve.Problems), err)
			}
			p := ve.Problems[0]
			if p.Path != tc.path || !strings.Contains(p.Message, tc.msg) || !strings.Contains(p.Fix, tc.fixContain) || p.Line != 0 {
				t.Errorf("got  %+v\nwant path %s, message containing %q, fix containing %q", p, tc.path, tc.msg, tc.fixContain)
			}
			if p.Fix == "" {
				t.Errorf("no fix: %+v", p)
			}
		})
	}
}

// TestValidateAccepts covers what is allowed though it looks close to a problem.
func TestValidateAccepts(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(a *App)
	}{
		{"own env wins over injected", func(a *App) {
			a.ConfigGroups = []ConfigGroup{{Name: "g", Items: []ConfigItem{{Key: "DB_HOST", Value: "x"}}, InjectInto: []string{"*"}}}
			a.Components[0].Env = []EnvVar{{Name: "DB_HOST", Value: "mine"}}
		}},
		{"same name from one group to all", func(a *App) {
			a.ConfigGroups = []ConfigGroup{{Name: "g", Items: []ConfigItem{{Key: "A"}}, InjectInto: []string{"*"}}}
		}},
		{"shared ReadWriteMany volume", func(a *App) {
			a.Components[1].Volumes[0].AccessMode = ReadWriteMany
			a.Components[0].Volumes = []Volume{{Name: "data", From: "db", MountPath: "/shared"}}
		}},
		{"zero replicas", func(a *App) { a.Components[0].Replicas = ptr(0) }},
		{"toleration of every taint", func(a *App) { a.Components[0].Tolerations = []Toleration{{Operator: TolerationExists}} }},
		{"mode without leading zero", func(a *App) { a.Components[0].ConfigFiles = []ConfigFile{{Path: "/a", Mode: "600"}} }},
		{"empty config file", func(a *App) { a.Components[0].ConfigFiles = []ConfigFile{{Path: "/a"}} }},
		{"digest image", func(a *App) {
			a.Components[0].Image = "example.com/demo/web@sha256:" + strings.Repeat("ab", 32)
		}},
		{"tcp and udp on different ports", func(a *App) {
			a.Components[1].Ports = append(a.Components[1].Ports, Port{Port: 53, Protocol: ProtocolUDP})
		}},
		{"external tcp port", func(a *App) { a.Components[1].Ports[0].Expose = ExposeExternal }},
		{"limit equal to request", func(a *App) {
			a.Components[0].Resources = Resources{Requests: ResourceList{Memory: "1Gi"}, Limits: ResourceList{Memory: "1024Mi"}}
		}},
		{"probe grpc port", func(a *App) {
			a.Components[1].Ports[0].Protocol = ProtocolGRPC
			a.Components[1].Probes.Liveness = &Probe{TCP: &TCPProbe{Port: 5432}}
		}},
		{"former name not clashing", func(a *App) { a.Components[0].FormerNames = []string{"frontend", "www"} }},
		{"namespaced object", func(a *App) {
			a.Resources = []Object{{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": map[string]any{"name": "reader"}}}
		}},
		{"same name, other kind", func(a *App) {
			a.Resources = []Object{
				{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "x"}},
				{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "x"}},
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := base()
			tc.mutate(a)
			if err := a.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestValidateCapsProblems checks that a hopeless app lists the first problems and a count of the rest.
func TestValidateCapsProblems(t *testing.T) {
	a := base()
	for range 300 {
		a.Components[0].Env = append(a.Components[0].Env, EnvVar{Name: "-"})
	}
	ve := validationError(t, a.Validate())
	if len(ve.Problems) != maxProblems+1 || ve.Problems[maxProblems].Message != "and 100 more problems" {
		t.Errorf("%d problems, the last %+v", len(ve.Problems), ve.Problems[len(ve.Problems)-1])
	}
}
