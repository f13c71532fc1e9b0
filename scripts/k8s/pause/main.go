// Command pause is the pod sandbox's PID 1, an equivalent of registry.k8s.io/pause: it sleeps until SIGINT or
// SIGTERM, then exits 0, and reaps every zombie re-parented to it (on SIGCHLD) meanwhile.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		// Signals coalesce: one SIGCHLD may stand for several exited children, so reap until none is left.
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
