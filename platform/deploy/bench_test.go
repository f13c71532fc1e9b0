package deploy

// Benchmarks of the deployer on a kwok control plane (platform/kubetest), run by scripts/bench-deploy.sh:
//
//	go test -run '^$' -bench '^BenchmarkInstall20$' -benchtime 3x ./platform/deploy/
//	go test -run '^$' -bench '^BenchmarkTrack300$' -benchtime 1x -timeout 30m ./platform/deploy/
//
// They report ratios and latencies as metrics and never fail on speed; they skip, like the tests, when the
// control-plane binaries are missing.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/app"
	"github.com/wutong-paas/wutong-offline/platform/kubetest"
	"github.com/wutong-paas/wutong-offline/platform/render"
	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// benchWorld is a control plane, a store and a started deployer for one benchmark.
type benchWorld struct {
	ctx context.Context
	cp  *kubetest.ControlPlane
	st  *store.Store
	d   *Deployer
}

func newBenchWorld(b *testing.B, nodes []kubetest.Node) *benchWorld {
	b.Helper()
	cp := kubetest.Start(b, kubetest.Options{Nodes: nodes})
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	st := storetest.Open(b, store.DialectSQLite)
	d, err := New(ctx, Options{Store: st, Clusters: []Cluster{{Name: LocalCluster, Config: cp.Config}},
		ComponentTimeout: 3 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	return &benchWorld{ctx: ctx, cp: cp, st: st, d: d}
}

func (w *benchWorld) team(b *testing.B, name string) store.Team {
	b.Helper()
	t := store.Team{Name: name}
	if err := w.st.CreateTeam(w.ctx, &t); err != nil {
		b.Fatal(err)
	}
	return t
}

// recordApp records an app.yaml as an imported version of team, with made-up image digests.
func (w *benchWorld) recordApp(b *testing.B, team int64, yaml string) *store.Version {
	b.Helper()
	a, err := app.Parse([]byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	return storetest.RecordApp(b, w.st, team, a)
}

// install records and runs an install to its outcome; it fails unless the install ends ready.
func (w *benchWorld) install(team store.Team, name string, v *store.Version) (*store.Install, error) {
	inst, rev, err := w.d.Install(w.ctx, InstallRequest{Team: team, Name: name, Version: v})
	if err != nil {
		return nil, fmt.Errorf("install %s/%s: %w", team.Name, name, err)
	}
	if err := w.d.Run(w.ctx, inst.ID, rev.Number); err != nil {
		return nil, fmt.Errorf("run %s/%s: %w", team.Name, name, err)
	}
	now, err := w.st.Install(w.ctx, inst.ID)
	if err != nil {
		return nil, err
	}
	if now.State != store.InstallReady {
		return nil, fmt.Errorf("install %s/%s ended %s: %s", team.Name, name, now.State, now.Message)
	}
	return now, nil
}

// app20 is a 20-component app of stateless components in three start levels: c01-c08 depend on nothing, c09-c16
// each on one of the first level, c17-c20 each on two of the second. Odd components run 2 replicas, even ones 1;
// each has an http port (a Service), an env var and an injected connection variable for its dependants.
func app20() string {
	var s strings.Builder
	s.WriteString("apiVersion: wutong.io/v1alpha1\nkind: App\nkey: bench20\nversion: 1.0.0\ncomponents:\n")
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&s, "  - name: c%02d\n    image: example.com/bench/c%02d:1.0\n    replicas: %d\n", i, i, 2-(i+1)%2)
		fmt.Fprintf(&s, "    ports: [{port: 8080, protocol: http}]\n    env: [{name: ROLE, value: c%02d}]\n", i)
		fmt.Fprintf(&s, "    connectionInfo: [{name: C%02d_ADDR, value: \"c%02d:8080\"}]\n", i, i)
		switch {
		case i >= 17:
			fmt.Fprintf(&s, "    dependsOn: [c%02d, c%02d]\n", 9+(i-17)*2, 10+(i-17)*2)
		case i >= 9:
			fmt.Fprintf(&s, "    dependsOn: [c%02d]\n", i-8)
		}
	}
	return s.String()
}

// app4 is the 4-component app of BenchmarkTrack300: web -> api -> db, and a worker; one replica each.
const app4 = `apiVersion: wutong.io/v1alpha1
kind: App
key: bench4
version: 1.0.0
components:
  - name: web
    image: example.com/bench/web:1.0
    ports: [{port: 8080, protocol: http}]
    dependsOn: [api]
  - name: api
    image: example.com/bench/api:1.0
    ports: [{port: 9000}]
    dependsOn: [db]
  - name: db
    image: example.com/bench/db:1.0
    ports: [{port: 5432}]
    connectionInfo: [{name: DB_ADDR, value: "db:5432"}]
  - name: worker
    image: example.com/bench/worker:1.0
    dependsOn: [db]
`

// kubectlFile writes the objects of revision 1 of inst, moved to namespace ns, as one JSON list headed by the
// Namespace, and returns its path and the workloads ("deployment/NAME") in file order.
func (w *benchWorld) kubectlFile(b *testing.B, inst *store.Install, ns, dir string) (string, []string) {
	b.Helper()
	rev, err := w.st.Revision(w.ctx, inst.ID, 1)
	if err != nil {
		b.Fatal(err)
	}
	m, err := render.Decode(rev.Objects)
	if err != nil {
		b.Fatal(err)
	}
	items := []any{map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
	var workloads []string
	for _, u := range m.Objects() {
		c := u.DeepCopy()
		c.SetNamespace(ns)
		items = append(items, c.Object)
		if k := c.GetKind(); k == "Deployment" || k == "StatefulSet" {
			workloads = append(workloads, strings.ToLower(k)+"/"+c.GetName())
		}
	}
	body, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, ns+".json")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		b.Fatal(err)
	}
	return file, workloads
}

// kubectl runs the from-source kubectl against the control plane.
func (w *benchWorld) kubectl(args ...string) error {
	cmd := exec.Command(w.cp.Kubectl, append([]string{"--kubeconfig", w.cp.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// BenchmarkInstall20: a 20-component app installed by the deployer (Install and Run: record, render, check owners,
// apply in start order, wait for each level's dependencies, prune) until all is ready, against `kubectl apply
// --server-side -f` of the same objects in a fresh namespace followed by `kubectl rollout status` of each workload,
// one after the other. Each iteration uses a fresh team (namespace) for each side; which side goes first alternates.
func BenchmarkInstall20(b *testing.B) {
	nodes := []kubetest.Node{{Name: "kwok-1", Arch: "amd64"}, {Name: "kwok-2", Arch: "amd64"}}
	w := newBenchWorld(b, nodes)
	home := w.team(b, "home")
	v := w.recordApp(b, home.ID, app20())
	dir := b.TempDir()

	var dep, kc, rec []time.Duration
	runDeployer := func(i int) *store.Install {
		team := w.team(b, fmt.Sprintf("d%d", i))
		begin := time.Now()
		inst, rev, err := w.d.Install(w.ctx, InstallRequest{Team: team, Name: "app", Version: v})
		if err != nil {
			b.Fatal(err)
		}
		recorded := time.Since(begin)
		if err := w.d.Run(w.ctx, inst.ID, rev.Number); err != nil {
			b.Fatal(err)
		}
		dep = append(dep, time.Since(begin))
		rec = append(rec, recorded)
		now, err := w.st.Install(w.ctx, inst.ID)
		if err != nil || now.State != store.InstallReady {
			b.Fatalf("install %d: %v %+v", i, err, now)
		}
		return now
	}
	// The first deployer install gives the objects kubectl applies (the same in every iteration but for the
	// namespace); it is not timed against kubectl.
	ref := runDeployer(-1)
	dep, rec = nil, nil
	runKubectl := func(i int) {
		ns := fmt.Sprintf("kubectl-%d", i)
		file, workloads := w.kubectlFile(b, ref, ns, dir)
		begin := time.Now()
		if err := w.kubectl("apply", "--server-side", "--field-manager", "bench", "-f", file); err != nil {
			b.Fatal(err)
		}
		for _, wl := range workloads {
			if err := w.kubectl("rollout", "status", "-n", ns, "--timeout", "5m", wl); err != nil {
				b.Fatal(err)
			}
		}
		kc = append(kc, time.Since(begin))
	}
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			runDeployer(i)
			runKubectl(i)
		} else {
			runKubectl(i)
			runDeployer(i)
		}
		i++
	}
	if i == 0 {
		return
	}
	d, k := mean(dep), mean(kc)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(d.Seconds(), "s/install")
	b.ReportMetric(k.Seconds(), "kubectl-s/install")
	b.ReportMetric(d.Seconds()/k.Seconds(), "ratio")
	b.ReportMetric(mean(rec).Seconds(), "record-s/install")
	b.Logf("deployer runs %v (of which Install, before Run: %v); kubectl runs %v", secs(dep), secs(rec), secs(kc))
}

// BenchmarkTrack300: 300 installs of a 4-component app (one replica each, 1200 pods on kwok nodes) tracked by one
// deployer, installed 8 at a time; then, idle, the latency of Status over 1000 calls on random installs, the
// process's RSS, and the goroutines with no installs and with 300.
//
// Each install is in its own team's namespace: rendered objects are named after their components, so a namespace
// holds one install of an app. BENCH_DEPLOY_INSTALLS (default 300) and BENCH_DEPLOY_PARALLEL (default 8) change the
// set-up.
func BenchmarkTrack300(b *testing.B) {
	installs, par := envInt("BENCH_DEPLOY_INSTALLS", 300), envInt("BENCH_DEPLOY_PARALLEL", 8)
	// 110 pods a node (kubetest's capacity): room for the 4 pods of every install, and a quarter more.
	n := (installs*4*5/4 + 109) / 110
	var nodes []kubetest.Node
	for i := 1; i <= max(n, 2); i++ {
		nodes = append(nodes, kubetest.Node{Name: fmt.Sprintf("kwok-%02d", i), Arch: "amd64"})
	}
	w := newBenchWorld(b, nodes)
	var ts []store.Team
	for i := range installs {
		ts = append(ts, w.team(b, fmt.Sprintf("t%03d", i)))
	}
	v := w.recordApp(b, ts[0].ID, app4)

	settle()
	g0, rss0 := runtime.NumGoroutine(), rssMiB()

	begin := time.Now()
	insts := make([]*store.Install, installs)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, par)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= installs {
					return
				}
				inst, err := w.install(ts[i], fmt.Sprintf("a%03d", i), v)
				if err != nil {
					errs <- err
					return
				}
				insts[i] = inst
				if d := done.Add(1); d%50 == 0 {
					fmt.Fprintf(os.Stderr, "BenchmarkTrack300: %d installs ready after %v\n", d, time.Since(begin).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	setup := time.Since(begin)
	b.Logf("%d installs of 4 components ready in %v (%d at a time, %d nodes)", installs, setup.Round(time.Second), par, len(nodes))

	for b.Loop() {
		// Idle: the rollouts are over; let the last events and status updates land.
		time.Sleep(3 * time.Second)
		settle()
		g, rss := runtime.NumGoroutine(), rssMiB()

		rng := rand.New(rand.NewPCG(1, 2))
		lat := make([]time.Duration, 0, 1000)
		for range 1000 {
			inst := insts[rng.IntN(len(insts))]
			t := time.Now()
			st, err := w.d.Status(w.ctx, inst)
			lat = append(lat, time.Since(t))
			if err != nil {
				b.Fatal(err)
			}
			if len(st.Components) != 4 || st.State != api.StateReady {
				b.Fatalf("status of %s: %d components, state %s", inst.Name, len(st.Components), st.State)
			}
		}
		slices.Sort(lat)
		ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(ms(0.50), "p50-ms")
		b.ReportMetric(ms(0.95), "p95-ms")
		b.ReportMetric(ms(0.99), "p99-ms")
		b.ReportMetric(rss, "rss-MiB")
		b.ReportMetric(rss0, "rss0-MiB")
		b.ReportMetric(float64(g0), "goroutines-0")
		b.ReportMetric(float64(g), "goroutines-n")
		b.ReportMetric(setup.Seconds(), "setup-s")
		b.ReportMetric(float64(installs), "installs")
	}
}

// settle collects garbage and gives memory back to the OS, so that RSS is what is live.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// rssMiB is VmRSS of this process.
func rssMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func secs(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.2fs", d.Seconds()))
	}
	return strings.Join(parts, " ")
}
