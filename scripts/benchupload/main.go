// Command benchupload uploads one file to one or more lab hosts at once with installer/remote, the way the
// installer distributes the payload, and prints the wall time as JSON. scripts/bench-upload.sh runs it side by
// side with OpenSSH scp.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/wutong-paas/wutong-offline/installer/remote"
)

func main() {
	var (
		hosts      = flag.String("hosts", "", "comma-separated host addresses")
		key        = flag.String("key", "", "private key")
		knownHosts = flag.String("known-hosts", "", "known_hosts file")
		src        = flag.String("file", "", "local file")
		dst        = flag.String("dst", "/opt/wutong/bench/payload", "remote path")
	)
	flag.Parse()
	if *hosts == "" || *src == "" {
		fmt.Fprintln(os.Stderr, "usage: benchupload -hosts IP[,IP…] -key KEY -known-hosts FILE -file FILE [-dst PATH]")
		os.Exit(2)
	}
	ctx := context.Background()
	var clients []*remote.Client
	for _, h := range strings.Split(*hosts, ",") {
		c, err := remote.Dial(ctx, remote.Config{Address: h, KeyFile: *key, HostKeys: remote.HostKeys{Files: []string{*knownHosts}}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	results := make([]remote.UploadResult, len(clients))
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.Upload(ctx, *src, *dst, remote.UploadOptions{})
		}()
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for _, r := range results {
		if r.Skipped {
			fmt.Fprintln(os.Stderr, "benchupload: the file was already there; remove it before timing")
			os.Exit(1)
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"seconds": took.Seconds(), "hosts": len(clients)})
}
