package kubeadm

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The structs below mirror the fields of k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4 that this package
// sets, with the same JSON names and omitempty choices, so that marshalling them gives valid kubeadm v1beta4 YAML.
// Fields kubeadm has and the installer never sets are left out: kubeadm defaults them.

const (
	kubeadmAPIVersion = "kubeadm.k8s.io/v1beta4"
	kindInit          = "InitConfiguration"
	kindCluster       = "ClusterConfiguration"
	kindJoin          = "JoinConfiguration"
)

// initConfiguration is v1beta4.InitConfiguration. BootstrapTokens is left out on purpose: the installer creates its
// own tokens through the API (kubeadm still defaults one token of its own, which nothing uses).
type initConfiguration struct {
	metav1.TypeMeta  `json:",inline"`
	NodeRegistration nodeRegistrationOptions `json:"nodeRegistration,omitempty"`
	LocalAPIEndpoint apiEndpoint             `json:"localAPIEndpoint,omitempty"`
	CertificateKey   string                  `json:"certificateKey,omitempty"`
	Timeouts         *timeouts               `json:"timeouts,omitempty"`
}

// clusterConfiguration is v1beta4.ClusterConfiguration.
type clusterConfiguration struct {
	metav1.TypeMeta      `json:",inline"`
	Etcd                 etcd       `json:"etcd,omitempty"`
	Networking           networking `json:"networking,omitempty"`
	KubernetesVersion    string     `json:"kubernetesVersion,omitempty"`
	ControlPlaneEndpoint string     `json:"controlPlaneEndpoint,omitempty"`
	APIServer            apiServer  `json:"apiServer,omitempty"`
	DNS                  dns        `json:"dns,omitempty"`
	ImageRepository      string     `json:"imageRepository,omitempty"`
	ClusterName          string     `json:"clusterName,omitempty"`
}

// joinConfiguration is v1beta4.JoinConfiguration.
type joinConfiguration struct {
	metav1.TypeMeta  `json:",inline"`
	NodeRegistration nodeRegistrationOptions `json:"nodeRegistration,omitempty"`
	Discovery        discovery               `json:"discovery"`
	ControlPlane     *joinControlPlane       `json:"controlPlane,omitempty"`
	Timeouts         *timeouts               `json:"timeouts,omitempty"`
}

// nodeRegistrationOptions is v1beta4.NodeRegistrationOptions. Taints has no omitempty in kubeadm either: nil
// ("taints: null") would let kubeadm default the control-plane taint and an empty list means no taints; the
// generator always resolves the taints itself and writes a list.
type nodeRegistrationOptions struct {
	Name                  string            `json:"name,omitempty"`
	CRISocket             string            `json:"criSocket,omitempty"`
	Taints                []corev1.Taint    `json:"taints"`
	KubeletExtraArgs      []arg             `json:"kubeletExtraArgs,omitempty"`
	IgnorePreflightErrors []string          `json:"ignorePreflightErrors,omitempty"`
	ImagePullPolicy       corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
}

// arg is v1beta4.Arg: one extra argument of a component, a list entry since v1beta4 (was a map).
type arg struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// apiEndpoint is v1beta4.APIEndpoint.
type apiEndpoint struct {
	AdvertiseAddress string `json:"advertiseAddress,omitempty"`
	BindPort         int32  `json:"bindPort,omitempty"`
}

// timeouts is v1beta4.Timeouts, carried by InitConfiguration, JoinConfiguration (and Reset/Upgrade) since v1beta4.
type timeouts struct {
	ControlPlaneComponentHealthCheck *metav1.Duration `json:"controlPlaneComponentHealthCheck,omitempty"`
	KubeletHealthCheck               *metav1.Duration `json:"kubeletHealthCheck,omitempty"`
	KubernetesAPICall                *metav1.Duration `json:"kubernetesAPICall,omitempty"`
	EtcdAPICall                      *metav1.Duration `json:"etcdAPICall,omitempty"`
	TLSBootstrap                     *metav1.Duration `json:"tlsBootstrap,omitempty"`
	Discovery                        *metav1.Duration `json:"discovery,omitempty"`
}

// etcd is v1beta4.Etcd with only the local (stacked) member.
type etcd struct {
	Local *localEtcd `json:"local,omitempty"`
}

// localEtcd is v1beta4.LocalEtcd; DataDir has no omitempty in kubeadm.
type localEtcd struct {
	DataDir string `json:"dataDir"`
}

// networking is v1beta4.Networking.
type networking struct {
	ServiceSubnet string `json:"serviceSubnet,omitempty"`
	PodSubnet     string `json:"podSubnet,omitempty"`
	DNSDomain     string `json:"dnsDomain,omitempty"`
}

// apiServer is v1beta4.APIServer (its embedded ControlPlaneComponent is not used).
type apiServer struct {
	CertSANs []string `json:"certSANs,omitempty"`
}

// dns is v1beta4.DNS (its embedded ImageMeta, of which only the repository is used).
type dns struct {
	ImageRepository string `json:"imageRepository,omitempty"`
}

// discovery is v1beta4.Discovery with token discovery only.
type discovery struct {
	BootstrapToken *bootstrapTokenDiscovery `json:"bootstrapToken,omitempty"`
}

// bootstrapTokenDiscovery is v1beta4.BootstrapTokenDiscovery.
type bootstrapTokenDiscovery struct {
	Token             string   `json:"token"`
	APIServerEndpoint string   `json:"apiServerEndpoint,omitempty"`
	CACertHashes      []string `json:"caCertHashes,omitempty"`
}

// joinControlPlane is v1beta4.JoinControlPlane.
type joinControlPlane struct {
	LocalAPIEndpoint apiEndpoint `json:"localAPIEndpoint,omitempty"`
	CertificateKey   string      `json:"certificateKey,omitempty"`
}
