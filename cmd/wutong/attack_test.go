//go:build !race

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/client"
)

// TestUnderAttack runs the real `wutong serve` (default argon2id: 64 MiB a hash) on loopback and attacks its login
// and import endpoints for a bounded time, the way the attack run that found issue 13 did: wrong passwords for
// admin from one address and from many, made-up names, slow bodies, and junk and stalled uploads. Throughout, the
// server's resident memory must stay under 300 MiB, /healthz must answer within 1 s, and the admin, logging in
// with the right password from an address it used before, must get in within 1 s every time. (Not under -race,
// which multiplies memory and slows argon2id tenfold: `make unit` runs it on its own.)
func TestUnderAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("attacks a real wutong serve for about 20 s")
	}
	r := runAttack(t, attack{duration: 15 * time.Second, hammer: true, distributed: 32, junk: true})
	t.Logf("peak RSS %d MiB; /healthz max %v over %d probes; admin logins: %d, max %v, median %v (idle median %v); "+
		"from new addresses: %d, %d failed, max %v; attack answers: %v",
		r.peakRSS>>20, r.healthMax, r.healthN, len(r.logins), r.loginMax(), r.loginMedian(), median(r.idleLogins),
		len(r.fresh), r.freshFail, maxOf(r.fresh), r.attackCodes)
	if r.peakRSS > 300<<20 {
		t.Errorf("peak resident memory %d MiB, want under 300 MiB", r.peakRSS>>20)
	}
	if r.healthMax > time.Second || r.healthFail > 0 {
		t.Errorf("/healthz: slowest %v, %d failed; want every answer within 1 s", r.healthMax, r.healthFail)
	}
	if r.loginFail > 0 || r.loginMax() > time.Second {
		t.Errorf("the admin's logins: %d failed, slowest %v; want every one in within 1 s", r.loginFail, r.loginMax())
	}
	if r.attackCodes[http.StatusOK] > 0 {
		t.Errorf("an attack request succeeded: %v", r.attackCodes)
	}
}

// attack says what runAttack does.
type attack struct {
	duration    time.Duration
	hammer      bool // one address sends 24 concurrent wrong passwords for admin, without pause
	distributed int  // this many addresses send one wrong password at a time each
	junk        bool // made-up names, slow bodies, junk and stalled uploads
}

// attackResult is what runAttack measured.
type attackResult struct {
	peakRSS             int64
	healthMax           time.Duration
	healthN, healthFail int
	logins              []time.Duration // the admin's right password from the address used before the attack
	loginFail           int
	fresh               []time.Duration // the admin's right password from an address never used before
	freshFail           int
	idleLogins          []time.Duration // the admin's logins before the attack
	attackCodes         map[int]int
	mu                  sync.Mutex
}

func (r *attackResult) loginMax() time.Duration { return maxOf(r.logins) }

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func (r *attackResult) loginMedian() time.Duration { return median(r.logins) }

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *attackResult) code(c int) {
	r.mu.Lock()
	r.attackCodes[c]++
	r.mu.Unlock()
}

// addrClient is an HTTP client whose connections come from loopback address ip.
func addrClient(ip string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 32}}
}

// runAttack starts a server and attacks it as a says. It measures the admin's logins before and during the attack,
// the server's memory and /healthz.
func runAttack(t testing.TB, a attack) *attackResult {
	dir := t.TempDir()
	keyFile, priv := filepath.Join(dir, "signer.pub"), filepath.Join(dir, "signer.key")
	if _, err := bundle.GenerateKey(priv, keyFile); err != nil {
		t.Fatal(err)
	}
	reg := imagestest.NewRegistry(t)
	srv := startServer(t, filepath.Join(dir, "data"), "", reg, keyFile)
	pid := srv.cmd.Process.Pid
	url := srv.url
	pkg, err := os.ReadFile(buildPackage(t, dir, priv))
	if err != nil {
		t.Fatal(err)
	}
	res := &attackResult{attackCodes: map[int]int{}}

	// The admin logs in from their usual address before the attack (it becomes a known address), and gets a token
	// for the uploads an insider might abuse.
	adminC := addrClient("127.0.0.4", 10*time.Second)
	login := func(c *http.Client, user, pw string) (int, string, time.Duration) {
		start := time.Now()
		resp, err := c.Post(url+api.Prefix+"/login", api.MediaJSON, strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw)))
		if err != nil {
			return 0, "", time.Since(start)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body), time.Since(start)
	}
	for range 5 {
		code, body, took := login(adminC, "admin", adminPassword)
		if code != 200 {
			t.Fatalf("admin login before the attack: %d %s", code, body)
		}
		res.idleLogins = append(res.idleLogins, took)
	}
	cl, err := client.New(client.Options{Server: url, HTTPClient: addrClient("127.0.0.9", 30*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Login(context.Background(), "admin", adminPassword); err != nil {
		t.Fatal(err)
	}
	token := cl.Token()

	ctx, cancel := context.WithTimeout(context.Background(), a.duration)
	defer cancel()
	var wg sync.WaitGroup
	var rssPeak atomic.Int64
	loop := func(fn func()) {
		wg.Go(func() {
			for ctx.Err() == nil {
				fn()
			}
		})
	}
	// Memory: the kernel's own high-water mark is read at the end; sample too, in case the process dies.
	wg.Go(func() {
		for ctx.Err() == nil {
			if v := procStatus(pid, "VmRSS"); v > rssPeak.Load() {
				rssPeak.Store(v)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	// 1. One address hammers admin with 24 concurrent wrong passwords.
	hammer := addrClient("127.0.0.66", 10*time.Second)
	for i := range 24 {
		if !a.hammer {
			break
		}
		loop(func() {
			code, _, _ := login(hammer, "admin", "wrong-"+strconv.Itoa(i))
			res.code(code)
		})
	}
	// 2. Distributed guessing: one wrong password at a time from each of many addresses.
	for i := range a.distributed {
		c := addrClient(fmt.Sprintf("127.0.1.%d", i+1), 10*time.Second)
		loop(func() {
			code, _, _ := login(c, "admin", "spray-"+strconv.Itoa(i))
			res.code(code)
			if code == 429 {
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	if a.junk {
		junkAttack(ctx, &wg, res, url, token, pkg, login)
	}
	probe(ctx, &wg, res, url, adminC, login)
	wg.Wait()
	res.peakRSS = max(procStatus(pid, "VmHWM"), rssPeak.Load())
	if res.peakRSS == 0 {
		t.Fatalf("could not read the server's memory from /proc/%d/status; server log:\n%s", pid, srv.log)
	}
	return res
}

type loginFunc func(c *http.Client, user, pw string) (int, string, time.Duration)

// junkAttack sends made-up names, slow bodies, and junk and stalled uploads until ctx ends.
func junkAttack(ctx context.Context, wg *sync.WaitGroup, res *attackResult, url, token string, pkg []byte, login loginFunc) {
	loop := func(fn func()) {
		wg.Go(func() {
			for ctx.Err() == nil {
				fn()
			}
		})
	}
	// 3. Made-up names of 7 KB.
	junk := addrClient("127.0.0.7", 10*time.Second)
	loop(func() {
		code, _, _ := login(junk, strings.Repeat("Q", 7000), "whatever-password")
		res.code(code)
	})
	// 4. Slow bodies: connections that send headers and a little of the body, then hold it.
	for i := range 200 {
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.2.%d", i%8+1))}}
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(url, "http://"))
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				fmt.Fprintf(c, "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"username\":\"")
				for ctx.Err() == nil {
					if _, err := c.Write([]byte("a")); err != nil {
						break
					}
					time.Sleep(time.Second)
				}
				c.Close()
			}
		})
	}
	// 5. Uploads with a valid token: 4 KB of junk, and a real package's head that then stalls.
	up := addrClient("127.0.0.9", 60*time.Second)
	upload := func(body io.Reader) int {
		req, _ := http.NewRequestWithContext(ctx, "POST", url+api.Prefix+"/imports", body)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", api.MediaPackage)
		resp, err := up.Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 10 {
		loop(func() {
			junk := bytes.Repeat([]byte{byte(i)}, 4096)
			res.code(upload(bytes.NewReader(junk)))
		})
		loop(func() {
			pr, pw := io.Pipe()
			go func() {
				pw.Write(pkg[:min(len(pkg), 64<<10)])
				<-ctx.Done()
				pw.CloseWithError(ctx.Err())
			}()
			res.code(upload(pr))
		})
	}
}

// probe asks /healthz every 100 ms, and logs in as the admin with the right password every 500 ms, alternately
// from the admin's usual address and from one never used before, until ctx ends.
func probe(ctx context.Context, wg *sync.WaitGroup, res *attackResult, url string, adminC *http.Client, login loginFunc) {
	health := addrClient("127.0.0.3", 5*time.Second)
	wg.Go(func() {
		for ctx.Err() == nil {
			start := time.Now()
			resp, err := health.Get(url + "/healthz")
			took := time.Since(start)
			res.mu.Lock()
			res.healthN++
			res.healthMax = max(res.healthMax, took)
			if err != nil || resp.StatusCode != 200 {
				res.healthFail++
			}
			res.mu.Unlock()
			if err == nil {
				resp.Body.Close()
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	wg.Go(func() {
		time.Sleep(2 * time.Second) // let the attack build up
		for n := 1; ctx.Err() == nil; n++ {
			c, fresh := adminC, n%2 == 0
			if fresh {
				c = addrClient(fmt.Sprintf("127.0.3.%d", n/2), 10*time.Second)
			}
			code, _, took := login(c, "admin", adminPassword)
			if ctx.Err() != nil {
				break
			}
			res.mu.Lock()
			switch {
			case fresh:
				res.fresh = append(res.fresh, took)
				if code != 200 {
					res.freshFail++
				}
			default:
				res.logins = append(res.logins, took)
				if code != 200 {
					res.loginFail++
				}
			}
			res.mu.Unlock()
			time.Sleep(500 * time.Millisecond)
		}
	})
}

// procStatus reads a "kB" field of /proc/PID/status, in bytes; 0 when unreadable.
func procStatus(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkLoginUnderAttack measures the admin's logins with the right password while the server is attacked:
// once with one address hammering, once with 32 more addresses spraying guesses. It reports latencies against the
// idle logins measured before each attack, the share of logins that got in, peak memory and the slowest /healthz.
// scripts/bench-login.sh (make bench) writes them into docs/benchmarks.md. Run with -benchtime 1x.
func BenchmarkLoginUnderAttack(b *testing.B) {
	for _, sc := range []struct {
		name string
		a    attack
	}{
		{"hammer", attack{duration: 20 * time.Second, hammer: true, junk: true}},
		{"distributed", attack{duration: 20 * time.Second, hammer: true, distributed: 32, junk: true}},
	} {
		b.Run(sc.name, func(b *testing.B) {
			var r *attackResult
			for b.Loop() {
				r = runAttack(b, sc.a)
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			okPct := func(all []time.Duration, failed int) float64 {
				if len(all) == 0 {
					return 0
				}
				return 100 * float64(len(all)-failed) / float64(len(all))
			}
			b.ReportMetric(ms(median(r.idleLogins)), "idle-p50-ms")
			b.ReportMetric(ms(median(r.logins)), "known-p50-ms")
			b.ReportMetric(ms(maxOf(r.logins)), "known-max-ms")
			b.ReportMetric(okPct(r.logins, r.loginFail), "known-ok-%")
			b.ReportMetric(ms(median(r.fresh)), "new-p50-ms")
			b.ReportMetric(ms(maxOf(r.fresh)), "new-max-ms")
			b.ReportMetric(okPct(r.fresh, r.freshFail), "new-ok-%")
			b.ReportMetric(float64(r.peakRSS>>20), "rss-MiB")
			b.ReportMetric(ms(r.healthMax), "healthz-max-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
