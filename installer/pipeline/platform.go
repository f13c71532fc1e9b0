package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/google/go-containerregistry/pkg/name"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/internal/password"
)

// The platform on the cluster.
const (
	// PlatformImageRepo is the repository under which a bundle carries the platform image (any tag).
	PlatformImageRepo = "ghcr.io/wutong-paas/wutong"
	// PlatformNamespace holds the platform's objects.
	PlatformNamespace = "wutong-system"
	// PlatformAdminSecret holds the first admin's generated password (key "password").
	PlatformAdminSecret = "wutong-admin"
	// PlatformTLSSecret holds the platform's server certificate and key (type kubernetes.io/tls).
	PlatformTLSSecret = "wutong-tls"
	platformName      = "wutong"
	platformPort      = 8080
	platformDataDir   = "/var/lib/wutong"
	platformTLSDir    = "/etc/wutong/tls"
	// platformCertAnnotation on the pod template is the sha256 of the certificate, so a new one restarts the pod.
	platformCertAnnotation = "wutong.io/tls-cert-sha256"
)

// platformImage is the bundle's platform image, or "" when it carries none.
func (in *Install) platformImage() string {
	for _, img := range in.Manifest.Images {
		ref, err := name.ParseReference(img.Name)
		if err == nil && ref.Context().Name() == PlatformImageRepo {
			return img.Name
		}
	}
	return ""
}

// PlatformURL is where the platform answers once installed: the address of the host that runs it (the first
// control plane, unless its data volume is elsewhere) on the node port, https unless spec.platform.insecureHTTP.
func (in *Install) PlatformURL() string {
	scheme := "https://"
	if in.Cluster.Spec.Platform.InsecureHTTP {
		scheme = "http://"
	}
	return scheme + net.JoinHostPort(in.platformHost().Address, strconv.Itoa(in.Cluster.Spec.Platform.NodePort))
}

// PlatformAccess is how a person reaches the installed platform, for the install summary.
type PlatformAccess struct {
	URL string
	// HTTPS is false with spec.platform.insecureHTTP.
	HTTPS bool
	// CAFile is the cluster CA on this machine, which signed the platform's certificate: the file to trust.
	// Empty with spec.platform.insecureHTTP.
	CAFile string
	// Login is the wtctl command that logs in as admin; PasswordCommand prints the admin's password.
	Login, PasswordCommand string
}

// PlatformAccess says where the platform answers, what to trust, and how to log in.
func (in *Install) PlatformAccess() PlatformAccess {
	a := PlatformAccess{URL: in.PlatformURL(), HTTPS: !in.Cluster.Spec.Platform.InsecureHTTP, PasswordCommand: PlatformPasswordHint()}
	a.Login = "wtctl app login " + a.URL + " --user admin"
	if a.HTTPS && in.Workdir != "" {
		a.CAFile = filepath.Join(in.Workdir, PKIDir, CAFile)
		a.Login += " --ca-cert " + remote.Quote(a.CAFile)
	}
	return a
}

// platformHosts are the names the platform's certificate is for: every node's address, internal address and
// name (a node port answers on every node), then the Service's names in the cluster.
func (in *Install) platformHosts() []string {
	var hosts []string
	for _, h := range in.Cluster.Spec.Hosts {
		hosts = addHosts(hosts, h.Address, h.InternalAddress, h.Name)
	}
	domain := cmp.Or(in.Cluster.Spec.Kubernetes.DNSDomain, cluster.DefaultDNSDomain)
	svc := platformName + "." + PlatformNamespace
	return addHosts(hosts, platformName, svc, svc+".svc", svc+".svc."+domain)
}

// platformCert is the platform's server certificate from the cluster CA, kept as WORKDIR/pki/platform.crt,
// platform.key and platform.hosts (0600) and issued again only when the hosts change or it nears its expiry.
func (in *Install) platformCert(workdir string) (certPEM, keyPEM []byte, err error) {
	ca, err := in.clusterCA(workdir)
	if err != nil {
		return nil, nil, fmt.Errorf("platform: %w", err)
	}
	return serverCert(ca, filepath.Join(workdir, PKIDir), "platform", in.platformHosts())
}

// platformPhase deploys the platform into wutong-system with server-side apply: its Secrets (the generated admin
// password, the registry login, and the server certificate from the cluster CA unless spec.platform.insecureHTTP),
// a ConfigMap of the cluster CA and the trusted package signers, RBAC, a data volume, the Deployment and a
// NodePort Service; then it waits until the platform is available.
type platformPhase struct{ in *Install }

func (platformPhase) Title() string { return "platform" }

func (p platformPhase) skip() string {
	switch {
	case !p.in.Cluster.Spec.Platform.IsEnabled():
		return "spec.platform.enabled is false: the platform is not installed"
	case p.in.platformImage() == "":
		return "the bundle carries no platform image (" + PlatformImageRepo + "): the platform is not installed"
	}
	return ""
}

func (p platformPhase) DryRun(ctx context.Context, env *engine.Env) error {
	node := env.Node(p.in.firstControlPlane().Name)
	if why := p.skip(); why != "" {
		node.Logf("%s", why)
		return nil
	}
	how := "HTTPS with a certificate from the cluster CA"
	if p.in.Cluster.Spec.Platform.InsecureHTTP {
		how = "plain HTTP (spec.platform.insecureHTTP)"
	}
	node.Logf("dry run: would deploy %s into namespace %s and publish it on %s, %s", p.in.platformImage(), PlatformNamespace, p.in.PlatformURL(), how)
	return nil
}

func (p platformPhase) Run(ctx context.Context, env *engine.Env) error {
	in := p.in
	node := env.Node(in.firstControlPlane().Name)
	if why := p.skip(); why != "" {
		node.Logf("%s", why)
		return nil
	}
	c, err := in.kubeClient()
	if err != nil {
		return err
	}
	cr, err := in.credentials(in.Workdir)
	if err != nil {
		return err
	}
	// The admin password is made once; later runs keep the one in the Secret.
	adminPassword := ""
	s, err := c.Kubernetes.CoreV1().Secrets(PlatformNamespace).Get(ctx, PlatformAdminSecret, metav1.GetOptions{})
	switch {
	case err == nil:
		adminPassword = string(s.Data["password"])
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("read the platform's admin secret: %w", err)
	}
	if adminPassword == "" {
		adminPassword = password.Generate()
	}
	sec := platformSecrets{adminPassword: adminPassword, regUser: cr.user, regPassword: cr.password, caPEM: cr.caPEM}
	insecure := in.Cluster.Spec.Platform.InsecureHTTP
	if !insecure {
		if sec.certPEM, sec.keyPEM, err = in.platformCert(in.Workdir); err != nil {
			return err
		}
	}
	if err := in.placePlatform(ctx, c.Kubernetes); err != nil {
		return err
	}
	if at := in.platformHost(); at.Name != in.firstControlPlane().Name {
		node.Logf("the platform's data volume is on %s: the platform runs there", at.Name)
	}
	objs, err := in.platformObjects(sec)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if _, err := c.ApplyObject(ctx, o); err != nil {
			return err
		}
	}
	if insecure {
		// Switched to plain HTTP: the Deployment no longer mounts the certificate; its key is not left behind.
		err := c.Kubernetes.CoreV1().Secrets(PlatformNamespace).Delete(ctx, PlatformTLSSecret, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove the platform's TLS secret: %w", err)
		}
	}
	node.Logf("deployed %s; waiting until it is available", in.platformImage())
	wctx, cancel := context.WithTimeout(ctx, in.readyTimeout())
	defer cancel()
	if err := c.WaitDeployments(wctx, PlatformNamespace, []string{platformName}); err != nil {
		return engine.WithHint(err,
			"See why with: kubectl -n "+PlatformNamespace+" describe pod -l app.kubernetes.io/name=wutong; kubectl -n "+PlatformNamespace+" logs deploy/wutong",
			"查看原因：kubectl -n "+PlatformNamespace+" describe pod -l app.kubernetes.io/name=wutong；kubectl -n "+PlatformNamespace+" logs deploy/wutong")
	}
	node.Logf("the platform answers on %s", in.PlatformURL())
	return nil
}

// platformSecrets are what the platform's objects carry: the admin password, the registry login, the cluster CA,
// and the platform's certificate and key (nil with spec.platform.insecureHTTP).
type platformSecrets struct {
	adminPassword, regUser, regPassword string
	caPEM, certPEM, keyPEM              []byte
}

// platformObjects are the platform's Kubernetes objects, in apply order.
func (in *Install) platformObjects(sec platformSecrets) ([]*unstructured.Unstructured, error) {
	spec := in.Cluster.Spec
	tlsOn := !spec.Platform.InsecureHTTP
	if tlsOn && (len(sec.certPEM) == 0 || len(sec.keyPEM) == 0) {
		return nil, fmt.Errorf("platform: no server certificate to serve HTTPS with")
	}
	size, err := resource.ParseQuantity(spec.Platform.StorageSize)
	if err != nil {
		return nil, fmt.Errorf("spec.platform.storageSize: %w", err)
	}
	labels := map[string]string{"app.kubernetes.io/name": platformName, "app.kubernetes.io/part-of": "wutong"}
	meta := func(n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: n, Namespace: PlatformNamespace, Labels: labels}
	}
	trust := map[string]string{"ca.crt": string(sec.caPEM)}
	for i, k := range in.PlatformKeys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("encode trusted key: %w", err)
		}
		trust["signer-"+strconv.Itoa(i)+".pem"] = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	registry := spec.Registry.Domain + ":" + strconv.Itoa(spec.Registry.Port)
	var aliases []corev1.HostAlias
	for _, h := range in.Cluster.Registries() {
		aliases = append(aliases, corev1.HostAlias{IP: h.InternalAddress, Hostnames: []string{spec.Registry.Domain}})
	}
	one, uid := int32(1), int64(65532)
	yes := true
	// Plain HTTP unless TLS is on: then the certificate's Secret, mounted read-only, and HTTPS everywhere.
	args := []string{"serve", "--data-dir", platformDataDir, "--listen", ":" + strconv.Itoa(platformPort),
		"--registry", registry, "--registry-user", sec.regUser, "--registry-ca", "/etc/wutong/trust/ca.crt",
		"--trusted-keys", "/etc/wutong/trust", "--log-format", "json"}
	scheme, portName, servicePort := corev1.URISchemeHTTP, "http", int32(80)
	var tlsObjs []runtime.Object
	var podAnnotations map[string]string
	mounts := []corev1.VolumeMount{{Name: "data", MountPath: platformDataDir},
		{Name: "trust", MountPath: "/etc/wutong/trust", ReadOnly: true}, {Name: "tmp", MountPath: "/tmp"}}
	volumes := []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: platformDataPVC}}},
		{Name: "trust", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "wutong-trust"}}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	if tlsOn {
		args = append(args, "--tls-cert", platformTLSDir+"/"+corev1.TLSCertKey, "--tls-key", platformTLSDir+"/"+corev1.TLSPrivateKeyKey)
		scheme, portName, servicePort = corev1.URISchemeHTTPS, "https", 443
		tlsObjs = []runtime.Object{&corev1.Secret{ObjectMeta: meta(PlatformTLSSecret), Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: sec.certPEM, corev1.TLSPrivateKeyKey: sec.keyPEM}}}
		sum := sha256.Sum256(sec.certPEM)
		podAnnotations = map[string]string{platformCertAnnotation: hex.EncodeToString(sum[:])}
		mounts = append(mounts, corev1.VolumeMount{Name: "tls", MountPath: platformTLSDir, ReadOnly: true})
		// Readable by the pod's group (fsGroup) only.
		mode := int32(0o440)
		volumes = append(volumes, corev1.Volume{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: PlatformTLSSecret, DefaultMode: &mode}}})
	} else {
		args = append(args, "--insecure-http")
	}
	probe := func(delay int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz",
			Port: intstr.FromInt32(platformPort), Scheme: scheme}},
			InitialDelaySeconds: delay, PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 6}
	}
	affinity, tolerations := in.platformPlacement()
	secretEnv := func(env, secret, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}}
	}
	objs := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: PlatformNamespace, Labels: labels}},
		&corev1.Secret{ObjectMeta: meta(PlatformAdminSecret), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"username": []byte("admin"), "password": []byte(sec.adminPassword)}},
		&corev1.Secret{ObjectMeta: meta("wutong-registry"), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"username": []byte(sec.regUser), "password": []byte(sec.regPassword)}},
	}
	objs = append(objs, tlsObjs...)
	objs = append(objs,
		&corev1.ConfigMap{ObjectMeta: meta("wutong-trust"), Data: trust},
		&corev1.ServiceAccount{ObjectMeta: meta(platformName)},
		// The platform deploys apps into team namespaces (the deployer, next): it needs these everywhere.
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "wutong-platform", Labels: labels}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"services", "configmaps", "secrets", "persistentvolumeclaims", "serviceaccounts"}, Verbs: []string{"*"}},
			{APIGroups: []string{""}, Resources: []string{"pods", "pods/log", "events", "nodes"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "replicasets"}, Verbs: []string{"*"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses", "networkpolicies"}, Verbs: []string{"*"}},
			{APIGroups: []string{"batch"}, Resources: []string{"jobs", "cronjobs"}, Verbs: []string{"*"}},
		}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "wutong-platform", Labels: labels},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "wutong-platform"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: platformName, Namespace: PlatformNamespace}}},
		&corev1.PersistentVolumeClaim{ObjectMeta: meta(platformDataPVC), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}}}},
		&appsv1.Deployment{ObjectMeta: meta(platformName), Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			// One writer of the SQLite file on a ReadWriteOnce volume: stop the old pod before the new one starts.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": platformName}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: podAnnotations}, Spec: corev1.PodSpec{
				ServiceAccountName: platformName,
				Affinity:           affinity,
				Tolerations:        tolerations,
				HostAliases:        aliases,
				SecurityContext:    &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid, RunAsNonRoot: &yes},
				Containers: []corev1.Container{{
					Name:  platformName,
					Image: in.platformImage(),
					Args:  args,
					Env: []corev1.EnvVar{secretEnv("WUTONG_ADMIN_PASSWORD", PlatformAdminSecret, "password"),
						secretEnv("WUTONG_REGISTRY_PASSWORD", "wutong-registry", "password")},
					Ports:          []corev1.ContainerPort{{Name: portName, ContainerPort: platformPort}},
					ReadinessProbe: probe(5),
					LivenessProbe:  probe(30),
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
						Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: new(bool), ReadOnlyRootFilesystem: &yes},
					VolumeMounts:    mounts,
				}},
				Volumes: volumes,
			}},
		}},
		&corev1.Service{ObjectMeta: meta(platformName), Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort,
			// Clients keep their own address, which the platform's per-address limits need (platform_place.go).
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Selector:              map[string]string{"app.kubernetes.io/name": platformName},
			Ports: []corev1.ServicePort{{Name: portName, Port: servicePort, TargetPort: intstr.FromInt32(platformPort),
				NodePort: int32(spec.Platform.NodePort)}}}},
	)
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		u, err := toUnstructured(o)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// toUnstructured converts a typed object, with the apiVersion and kind client-go's scheme knows it by.
func toUnstructured(o runtime.Object) (*unstructured.Unstructured, error) {
	gvks, _, err := scheme.Scheme.ObjectKinds(o)
	if err != nil || len(gvks) == 0 {
		return nil, fmt.Errorf("convert %T: no kind known: %v", o, err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("convert %T: %w", o, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvks[0])
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	return u, nil
}

// PlatformPasswordHint says how to read the admin password, for the summary.
func PlatformPasswordHint() string {
	return "kubectl -n " + PlatformNamespace + " get secret " + PlatformAdminSecret + " -o jsonpath='{.data.password}' | base64 -d"
}
