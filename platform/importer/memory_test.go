//go:build !race

package importer

import (
	"context"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/images/registry"
	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// TestImportMemoryBounded imports a package much larger than the heap may grow, sampling the heap while it runs:
// the package streams through verification, staging and the push instead of being held in memory. (Not under
// -race, whose shadow memory makes heap numbers meaningless: `make unit` runs it once more without -race.)
func TestImportMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 96 MiB package")
	}
	st := storetest.Open(t, store.DialectSQLite)
	f := newFixture(t, st, 0)
	// A registry on disk (the embedded one), so that what it receives is not counted as heap.
	h, closeReg, err := registry.NewHandler(context.Background(), registry.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); closeReg() })
	f.im.opts.Registry.Target = strings.TrimPrefix(srv.URL, "http://")
	const layers, size = 2, 48 << 20
	p := f.pkg(t, "mem", "1.0.0", layers, size)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	})
	if _, err := f.run(t, p); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	fi, err := os.Stat(p)
	if err != nil || fi.Size() < layers*size {
		t.Fatalf("the package is smaller than its layers: %v %v", fi, err)
	}
	t.Logf("package %d MiB; heap in use grew by at most %d MiB during the import", fi.Size()>>20, grew>>20)
	// The registry runs in this process too (on disk); the budget covers both.
	if limit := int64(40 << 20); grew > limit {
		t.Fatalf("heap grew by %d MiB importing a %d MiB package (limit %d MiB)", grew>>20, layers*size>>20, limit>>20)
	}
}
