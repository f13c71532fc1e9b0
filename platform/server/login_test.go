package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// fromAddr is an HTTP client whose connections come from the loopback address ip (127.0.0.0/8 is all loopback on
// Linux), so that one test can play several clients.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

// send makes a request and returns the status, headers and body.
func send(t *testing.T, c *http.Client, method, url, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

var jsonCT = map[string]string{"Content-Type": api.MediaJSON}

func loginBody(user, pw string) string {
	return fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw)
}

// Finding 1: concurrent wrong logins all passed the limiter before any failure was recorded, and every one of them
// ran argon2id at once. Now a token is taken before hashing, and one address gets one hash at a time.
func TestConcurrentWrongLoginsAreLimited(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), nil)
	c := fromAddr("127.0.0.1")
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 24 {
		wg.Go(func() {
			<-start
			code, _, _ := send(t, c, "POST", e.url+api.Prefix+"/login", loginBody("admin", fmt.Sprintf("guess-%02d-wrong", i)), jsonCT)
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if codes[401] > 5 || codes[401]+codes[429] != 24 {
		t.Fatalf("24 concurrent wrong logins answered %v: want at most the burst of 5 checked (401), the rest refused (429)", codes)
	}
}

// Finding 1: made-up names, however long, never reach the limiter, so they cannot fill its memory.
func TestMadeUpNamesCostNothing(t *testing.T) {
	lim := &auth.Limiter{}
	e := newEnv(t, storetest.Open(t, "sqlite"), func(o *Options) { o.Limiter = lim })
	c := fromAddr("127.0.0.1")
	// A name over the login body cap is refused before it is decoded.
	code, _, _ := send(t, c, "POST", e.url+api.Prefix+"/login", loginBody(strings.Repeat("x", 1<<20), "whatever-pw"), jsonCT)
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 1 MiB name: %d, want 413", code)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range 300 {
		name := fmt.Sprintf("%d-%s", i, strings.Repeat("Y", 6000)) // not a user name: upper case, too long
		code, _, body := send(t, c, "POST", e.url+api.Prefix+"/login", loginBody(name, "whatever-pw"), jsonCT)
		if code != 401 || !strings.Contains(body, "wrong user name or password") {
			t.Fatalf("made-up name: %d %s", code, body)
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if n := lim.Len(); n != 0 {
		t.Fatalf("the limiter holds %d buckets for names that cannot exist", n)
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
		t.Fatalf("300 made-up names of 6 KB grew the heap by %d bytes", grew)
	}
	// The right password still works from the same address: made-up names are no failures.
	if code, _, body := send(t, c, "POST", e.url+api.Prefix+"/login", loginBody("admin", adminPassword), jsonCT); code != 200 {
		t.Fatalf("admin after the junk: %d %s", code, body)
	}
}

// Finding 1: the gate bounds concurrent password checks; checks beyond its queue are answered 429 at once.
func TestPasswordChecksAreGated(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), func(o *Options) {
		o.Hasher = auth.Hasher{Time: 3, MemoryKiB: 16 << 10, Threads: 1} // slow enough to overlap
		o.Gate = &auth.Gate{Slots: 1, Queue: 1, MaxWait: 100 * time.Millisecond}
	})
	var mu sync.Mutex
	codes := map[int]int{}
	var busy string
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 12 {
		wg.Go(func() {
			c := fromAddr(fmt.Sprintf("127.0.0.%d", 10+i))
			<-start
			code, _, body := send(t, c, "POST", e.url+api.Prefix+"/login", loginBody("admin", "wrong-password"), jsonCT)
			mu.Lock()
			codes[code]++
			if code == 429 {
				busy = body
			}
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if codes[429] == 0 || codes[401]+codes[429] != 12 || !strings.Contains(busy, "Server busy") {
		t.Fatalf("12 concurrent logins through a gate of 1 slot and 1 waiter: %v (busy: %s); want some refused as busy", codes, busy)
	}
}

// Finding 2: wrong passwords from one address do not keep the right password from another address out.
func TestNoLockoutFromElsewhere(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), nil)
	attacker, admin := fromAddr("127.0.0.66"), fromAddr("127.0.0.2")
	for i := range 12 {
		send(t, attacker, "POST", e.url+api.Prefix+"/login", loginBody("admin", fmt.Sprintf("guess-%d-wrong", i)), jsonCT)
	}
	if code, _, _ := send(t, attacker, "POST", e.url+api.Prefix+"/login", loginBody("admin", adminPassword), jsonCT); code != 429 {
		t.Fatalf("the guessing address itself: %d, want 429", code)
	}
	code, _, body := send(t, admin, "POST", e.url+api.Prefix+"/login", loginBody("admin", adminPassword), jsonCT)
	if code != 200 {
		t.Fatalf("the admin from a clean address while an attack runs elsewhere: %d %s", code, body)
	}
}

// Finding 7: an unknown name takes as long to refuse as a wrong password (both run argon2id).
func TestUnknownUserTiming(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), func(o *Options) {
		o.Hasher = auth.Hasher{Time: 2, MemoryKiB: 16 << 10, Threads: 1}
	})
	c := fromAddr("127.0.0.1")
	median := func(user string) time.Duration {
		var ds []time.Duration
		for range 4 {
			start := time.Now()
			if code, _, _ := send(t, c, "POST", e.url+api.Prefix+"/login", loginBody(user, "wrong-password"), jsonCT); code != 401 {
				t.Fatalf("%s: %d", user, code)
			}
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return (ds[1] + ds[2]) / 2
	}
	known, unknown := median("admin"), median("nobody")
	if unknown < known/2 {
		t.Fatalf("an unknown name is refused in %v, a wrong password in %v: names can be probed by timing", unknown, known)
	}
}

// Finding 8: a password change revokes the user's other sessions and API tokens; an admin can revoke them all.
func TestPasswordChangeRevokesOtherTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, nil)
		admin := e.client("admin", adminPassword)
		doJSON(t, e, admin, "POST", "/users", `{"name":"bob","password":"bob-password-1"}`, 201, nil)
		a, b := e.client("bob", "bob-password-1"), e.client("bob", "bob-password-1")
		var tok api.Token
		doJSON(t, e, a, "POST", "/tokens", `{"name":"ci"}`, 201, &tok)

		doJSON(t, e, a, "POST", "/me/password", `{"current":"wrong-password","new":"bob-password-2"}`, 403, nil)
		doJSON(t, e, a, "POST", "/me/password", `{"current":"bob-password-1","new":"bob-password-2"}`, 204, nil)
		doJSON(t, e, a, "GET", "/me", ``, 200, nil) // the session that changed it stays
		doJSON(t, e, b, "GET", "/me", ``, 401, nil)
		doJSONToken(t, e, tok.Secret, "GET", "/me", ``, 401, nil)
		if _, err := e.anon().Login(context.Background(), "bob", "bob-password-1"); problemStatus(err) != 401 {
			t.Fatalf("old password: %v", err)
		}

		// Revoke all: admins only; afterwards none of bob's tokens work.
		c := e.client("bob", "bob-password-2")
		doJSON(t, e, c, "DELETE", "/users/admin/tokens", ``, 403, nil)
		var rev api.Revoked
		doJSON(t, e, admin, "DELETE", "/users/bob/tokens", ``, 200, &rev)
		if rev.Revoked != 2 {
			t.Fatalf("revoked %d, want bob's 2 sessions", rev.Revoked)
		}
		doJSON(t, e, a, "GET", "/me", ``, 401, nil)
		doJSON(t, e, c, "GET", "/me", ``, 401, nil)
		doJSON(t, e, admin, "DELETE", "/users/nobody/tokens", ``, 404, nil)
	})
}

// Smaller points: display names and token lifetimes are bounded.
func TestInputBounds(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), nil)
	admin := e.client("admin", adminPassword)
	long := strings.Repeat("名", 101)
	doJSON(t, e, admin, "POST", "/users", `{"name":"ann","displayName":"`+long+`"}`, 422, nil)
	doJSON(t, e, admin, "POST", "/teams", `{"name":"ops","displayName":"`+long+`"}`, 422, nil)
	doJSON(t, e, admin, "POST", "/teams", `{"name":"ops","displayName":"bad\u0007bell"}`, 422, nil)
	doJSON(t, e, admin, "POST", "/teams", `{"name":"ops","displayName":"`+strings.Repeat("名", 100)+`"}`, 201, nil)
	doJSON(t, e, admin, "POST", "/tokens", `{"name":"forever","ttlHours":9223372036854775807}`, 422, nil)
	doJSON(t, e, admin, "POST", "/tokens", fmt.Sprintf(`{"name":"long","ttlHours":%d}`, api.MaxTokenTTLHours+1), 422, nil)
	var tok api.Token
	doJSON(t, e, admin, "POST", "/tokens", fmt.Sprintf(`{"name":"ten-years","ttlHours":%d}`, api.MaxTokenTTLHours), 201, &tok)
	if tok.ExpiresAt == nil || tok.ExpiresAt.Before(time.Now().Add(9*365*24*time.Hour)) {
		t.Fatalf("a ten-year token expires at %v", tok.ExpiresAt)
	}
	doJSONToken(t, e, tok.Secret, "GET", "/me", ``, 200, nil)
}
