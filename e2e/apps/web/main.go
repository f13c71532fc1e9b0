// Command web is the e2e test's web component: it answers GET / with its version and passes /data/KEY through to
// the key-value store named by KV_ADDR (the connection info the platform injects). With NOT_READY set, its
// readiness check fails, which is how the test's broken version never becomes ready.
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	version, kv := os.Getenv("VERSION"), os.Getenv("KV_ADDR")
	http.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if os.Getenv("NOT_READY") != "" {
			http.Error(w, "not ready (NOT_READY is set)", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "web %s\n", version) })
	http.HandleFunc("/data/{key}", func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+kv+"/kv/"+r.PathValue("key"), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, "kv: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		log.Printf("%s /data/%s -> %d", r.Method, r.PathValue("key"), resp.StatusCode)
	})
	log.Printf("web %s serving on :8080, kv at %s", version, kv)
	log.Fatal(http.ListenAndServe(":8080", nil))
}
