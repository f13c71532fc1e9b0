// Package installer is the home of everything that turns bare servers into a cluster. Its subpackages: cluster
// (cluster.yaml), remote (SSH and SFTP, with remotetest as a scripted fake), facts (what a node is, collected on the
// node by `wtctl node facts`), preflight (gathering facts over SSH and judging them), engine (phases, the gate,
// markers, journal, events), pipeline (the install phases in order), payload (which bundle files a node gets),
// nodeprep (`wtctl node prep`), containerd (the runtime's configuration, health and image preload) and labtest (lab
// hosts for integration tests). kubeadm comes next.
package installer
