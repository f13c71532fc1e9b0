package kubeadm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// InitConfig is the kubeadm init --config file for the first control plane n: InitConfiguration,
// ClusterConfiguration, KubeletConfiguration and KubeProxyConfiguration, in that order, as one multi-document YAML.
// certificateKey (see NewCertificateKey) is the key to upload the control-plane certificates with, for HA; empty
// when there is no second control plane.
func InitConfig(o Options, n Node, certificateKey string) ([]byte, error) {
	err := joinErrs(Validate(o), ValidateNode(o, n, true), validateCertificateKey(certificateKey, "certificateKey"))
	if err != nil {
		return nil, fmt.Errorf("validate kubeadm init options: %w", err)
	}
	o, n = o.withDefaults(), n.withDefaults()
	initCfg := initConfiguration{
		TypeMeta:         metav1.TypeMeta{APIVersion: kubeadmAPIVersion, Kind: kindInit},
		NodeRegistration: nodeRegistration(n, true),
		LocalAPIEndpoint: apiEndpoint{AdvertiseAddress: n.AdvertiseAddress, BindPort: int32(n.BindPort)},
		CertificateKey:   certificateKey,
		Timeouts:         o.Timeouts.kubeadm(),
	}
	clusterCfg := clusterConfiguration{
		TypeMeta:             metav1.TypeMeta{APIVersion: kubeadmAPIVersion, Kind: kindCluster},
		Etcd:                 etcd{Local: &localEtcd{DataDir: EtcdDataDir}},
		Networking:           networking{ServiceSubnet: o.ServiceSubnet, PodSubnet: o.PodSubnet, DNSDomain: o.DNSDomain},
		KubernetesVersion:    o.KubernetesVersion,
		ControlPlaneEndpoint: o.ControlPlaneEndpoint,
		APIServer:            apiServer{CertSANs: o.certSANs()},
		DNS:                  dns{ImageRepository: o.DNSImageRepository},
		ImageRepository:      o.ImageRepository,
		ClusterName:          o.ClusterName,
	}
	kubelet, err := kubeletConfiguration(o)
	if err != nil {
		return nil, err
	}
	docs := []any{initCfg, clusterCfg, kubelet, kubeProxyConfiguration(o)}
	return marshalDocs(docs)
}

// JoinConfig is the kubeadm join --config file for node n: one JoinConfiguration that discovers the cluster through
// o.ControlPlaneEndpoint with j's token and CA hashes, and, when j.ControlPlane, joins as a control plane with the
// uploaded certificates. The kubelet and kube-proxy configurations come from the cluster, not from this file.
func JoinConfig(o Options, n Node, j Join) ([]byte, error) {
	if err := joinErrs(Validate(o), ValidateNode(o, n, j.ControlPlane), ValidateJoin(j)); err != nil {
		return nil, fmt.Errorf("validate kubeadm join options: %w", err)
	}
	o, n = o.withDefaults(), n.withDefaults()
	cfg := joinConfiguration{
		TypeMeta:         metav1.TypeMeta{APIVersion: kubeadmAPIVersion, Kind: kindJoin},
		NodeRegistration: nodeRegistration(n, j.ControlPlane),
		Discovery: discovery{BootstrapToken: &bootstrapTokenDiscovery{
			Token:             j.Token,
			APIServerEndpoint: o.ControlPlaneEndpoint,
			CACertHashes:      sortedUnique(lower(j.CACertHashes)),
		}},
		Timeouts: o.Timeouts.kubeadm(),
	}
	if j.ControlPlane {
		cfg.ControlPlane = &joinControlPlane{
			LocalAPIEndpoint: apiEndpoint{AdvertiseAddress: n.AdvertiseAddress, BindPort: int32(n.BindPort)},
			CertificateKey:   j.CertificateKey,
		}
	}
	return marshalDocs([]any{cfg})
}

// nodeRegistration is n's nodeRegistration; n has its defaults applied.
func nodeRegistration(n Node, controlPlane bool) nodeRegistrationOptions {
	var args []arg
	if n.AdvertiseAddress != "" {
		args = append(args, arg{Name: "node-ip", Value: n.AdvertiseAddress})
	}
	if len(n.Labels) > 0 {
		labels := make([]string, 0, len(n.Labels))
		for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
			labels = append(labels, k+"="+n.Labels[k])
		}
		args = append(args, arg{Name: "node-labels", Value: strings.Join(labels, ",")})
	}
	slices.SortFunc(args, func(a, b arg) int { return strings.Compare(a.Name, b.Name) })
	return nodeRegistrationOptions{
		Name:                  n.Name,
		CRISocket:             n.CRISocket,
		Taints:                taints(n.Taints, controlPlane),
		KubeletExtraArgs:      args,
		IgnorePreflightErrors: sortedUnique(n.IgnorePreflightErrors),
		ImagePullPolicy:       corev1.PullIfNotPresent,
	}
}

// taints resolves ts to what kubeadm should register: nil on a control plane is the control-plane NoSchedule taint,
// nil on a worker and an empty slice are no taints (an empty list, never null, so kubeadm adds nothing).
func taints(ts []Taint, controlPlane bool) []corev1.Taint {
	if ts == nil && controlPlane {
		return []corev1.Taint{{Key: ControlPlaneTaintKey, Effect: corev1.TaintEffectNoSchedule}}
	}
	out := make([]corev1.Taint, 0, len(ts))
	for _, t := range ts {
		out = append(out, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	slices.SortFunc(out, func(a, b corev1.Taint) int {
		return cmpStrings(a.Key, b.Key, string(a.Effect), string(b.Effect), a.Value, b.Value)
	})
	return out
}

// kubeadm is t as kubeadm's v1beta4 timeouts, nil when all are zero (kubeadm's defaults).
func (t Timeouts) kubeadm() *timeouts {
	d := func(v time.Duration) *metav1.Duration {
		if v == 0 {
			return nil
		}
		return &metav1.Duration{Duration: v}
	}
	out := &timeouts{
		ControlPlaneComponentHealthCheck: d(t.ControlPlaneComponentHealthCheck),
		KubeletHealthCheck:               d(t.KubeletHealthCheck),
		KubernetesAPICall:                d(t.KubernetesAPICall),
		EtcdAPICall:                      d(t.EtcdAPICall),
		TLSBootstrap:                     d(t.TLSBootstrap),
		Discovery:                        d(t.Discovery),
	}
	if *out == (timeouts{}) {
		return nil
	}
	return out
}

// certSANs are o.CertSANs plus the endpoint's host and every control-plane address, deduplicated and sorted (IP
// addresses in their canonical form).
func (o Options) certSANs() []string {
	sans := slices.Clone(o.CertSANs)
	if host, _, err := net.SplitHostPort(o.ControlPlaneEndpoint); err == nil {
		sans = append(sans, host)
	}
	sans = append(sans, o.ControlPlaneAddresses...)
	for i, s := range sans {
		if a, err := netip.ParseAddr(s); err == nil {
			sans[i] = a.String()
		}
	}
	return sortedUnique(sans)
}

// kubeletConfiguration is the cluster-wide KubeletConfiguration kubeadm stores in the kubelet-config ConfigMap.
func kubeletConfiguration(o Options) (kubeletv1beta1.KubeletConfiguration, error) {
	dnsIP, err := ClusterDNS(o.ServiceSubnet)
	if err != nil {
		return kubeletv1beta1.KubeletConfiguration{}, err
	}
	k := kubeletv1beta1.KubeletConfiguration{
		TypeMeta: metav1.TypeMeta{
			APIVersion: kubeletv1beta1.SchemeGroupVersion.String(), Kind: "KubeletConfiguration",
		},
		CgroupDriver:             "systemd",
		ContainerRuntimeEndpoint: DefaultCRISocket,
		ClusterDNS:               []string{dnsIP.String()},
		ClusterDomain:            o.DNSDomain,
		FailSwapOn:               new(true),
		RotateCertificates:       true,
		ServerTLSBootstrap:       false, // the default; omitempty leaves it out of the file
	}
	if o.CgroupV1 {
		k.FailCgroupV1 = new(false)
	}
	return k, nil
}

// kubeProxyConfiguration is the KubeProxyConfiguration kubeadm stores in the kube-proxy ConfigMap.
func kubeProxyConfiguration(o Options) kubeproxyv1alpha1.KubeProxyConfiguration {
	return kubeproxyv1alpha1.KubeProxyConfiguration{
		TypeMeta: metav1.TypeMeta{
			APIVersion: kubeproxyv1alpha1.SchemeGroupVersion.String(), Kind: "KubeProxyConfiguration",
		},
		Mode:        kubeproxyv1alpha1.ProxyMode(o.ProxyMode),
		ClusterCIDR: o.PodSubnet,
	}
}

// ClusterDNS is the cluster DNS service address for serviceSubnet, computed as kubeadm does: the address 10 after
// the network address of the first CIDR (10.96.0.0/12 gives 10.96.0.10, fd00:10:96::/108 gives fd00:10:96::a).
func ClusterDNS(serviceSubnet string) (netip.Addr, error) {
	first, _, _ := strings.Cut(serviceSubnet, ",")
	p, err := netip.ParsePrefix(first)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("parse service subnet %q: %w", first, err)
	}
	p = p.Masked()
	a := p.Addr()
	for range 10 {
		a = a.Next()
	}
	if !a.IsValid() || !p.Contains(a) {
		return netip.Addr{}, fmt.Errorf("compute cluster DNS address: service subnet %s has fewer than 11 addresses", p)
	}
	return a, nil
}

// marshalDocs is docs as one YAML stream, "---" between documents. The kubeadm structs marshal as they are; the
// official kubelet and kube-proxy structs have many fields without omitempty, so those are compacted first.
func marshalDocs(docs []any) ([]byte, error) {
	var buf bytes.Buffer
	for i, d := range docs {
		switch d.(type) {
		case kubeletv1beta1.KubeletConfiguration, kubeproxyv1alpha1.KubeProxyConfiguration:
			c, err := compact(d)
			if err != nil {
				return nil, err
			}
			d = c
		}
		b, err := yaml.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("marshal %T: %w", docs[i], err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// compact is v as a JSON object without what the zero value of v's type also marshals to (the "0s" durations, empty
// structs and empty strings of fields without omitempty), but keeping its apiVersion and kind: only what was set.
// A field set to its type's zero value on purpose must be a pointer (like failCgroupV1), which marshals either way.
func compact(v any) (map[string]any, error) {
	set, err := toMap(v)
	if err != nil {
		return nil, err
	}
	zero, err := toMap(reflect.Zero(reflect.TypeOf(v)).Interface())
	if err != nil {
		return nil, err
	}
	prune(set, zero)
	return set, nil
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal %T: %w", v, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("unmarshal %T: %w", v, err)
	}
	return m, nil
}

// prune deletes from m every key whose value equals zero's, recursively, and maps left empty.
func prune(m, zero map[string]any) {
	for k, v := range m {
		z, ok := zero[k]
		if !ok {
			continue
		}
		vm, vIsMap := v.(map[string]any)
		zm, zIsMap := z.(map[string]any)
		if vIsMap && zIsMap {
			prune(vm, zm)
			if len(vm) == 0 {
				delete(m, k)
			}
			continue
		}
		if reflect.DeepEqual(v, z) {
			delete(m, k)
		}
	}
}

// sortedUnique is ss without empty strings and duplicates, sorted; nil when nothing is left.
func sortedUnique(ss []string) []string {
	out := slices.DeleteFunc(slices.Clone(ss), func(s string) bool { return s == "" })
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// lower is ss in lower case (kubeadm compares CA hashes in lower case).
func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// cmpStrings compares pairs (a1, b1), (a2, b2)… in order.
func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}
