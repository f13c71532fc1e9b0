// Package installer is the home of everything that turns bare servers into a cluster. Its subpackages: cluster
// (cluster.yaml), remote (SSH and SFTP, with remotetest as a scripted fake), facts (what a node is, collected on the
// node by `wtctl node facts`), preflight (gathering facts over SSH and judging them) and labtest (lab hosts for
// integration tests). The phase engine, journal and kubeadm configuration come next.
package installer
