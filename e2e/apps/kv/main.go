// Command kv is the e2e test's key-value store: PUT and GET /kv/KEY keep values as files in DATA (a persistent
// volume), so that the test can show that data outlives upgrades, rollbacks and uninstalls.
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
)

var keyRE = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

func main() {
	dir := os.Getenv("DATA")
	if dir == "" {
		dir = "/data"
	}
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":6379"
	}
	http.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("key")
		if !keyRE.MatchString(key) {
			http.Error(w, "bad key", http.StatusBadRequest)
			return
		}
		file := filepath.Join(dir, key)
		switch r.Method {
		case http.MethodPut:
			b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err == nil {
				err = os.WriteFile(file, b, 0o644)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			log.Printf("stored %s (%d bytes)", key, len(b))
		case http.MethodGet:
			b, err := os.ReadFile(file)
			if err != nil {
				http.Error(w, "no such key", http.StatusNotFound)
				return
			}
			w.Write(b)
		default:
			http.Error(w, "GET or PUT", http.StatusMethodNotAllowed)
		}
	})
	log.Printf("kv serving %s on %s", dir, addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
