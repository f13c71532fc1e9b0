// Package kubeadm writes the configuration files kubeadm init and kubeadm join read on each node: kubeadm.k8s.io/v1beta4
// InitConfiguration, ClusterConfiguration and JoinConfiguration from the package's own small structs (k8s.io/kubernetes
// is not imported; the structs mirror the v1beta4 fields the installer sets, with the same JSON tags), plus the
// kubelet.config.k8s.io/v1beta1 KubeletConfiguration and kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration from
// the official staging types. It also validates the inputs (every problem at once), and computes what joins need:
// bootstrap tokens and their kube-system Secrets, the CA certificate hash and the certificate key, exactly as kubeadm
// does. The output is stable (sorted keys and lists) so that it can be compared and golden-tested.
package kubeadm
