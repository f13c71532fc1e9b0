// Package installer will hold the cluster spec (cluster.yaml), the SSH transport, node facts, preflight and the
// phase engine that bootstraps bare servers into a cluster from a verified bundle. Nothing is implemented yet; see
// the open issues.
package installer
