// Package e2e holds the end-to-end tests (`make e2e`, build tag e2e): a from-source Kubernetes bundle installed
// with `wtctl cluster install` on qemu VMs, checked with OpenSSH and kubectl on the nodes, interrupted and resumed,
// and reset. They need root, qemu and an hour; `go test ./...` builds nothing here.
package e2e
