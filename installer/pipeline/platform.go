package pipeline

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
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

	"github.com/wutong-paas/wutong-offline/installer/engine"
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
	platformName        = "wutong"
	platformPort        = 8080
	platformDataDir     = "/var/lib/wutong"
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

// PlatformURL is where the platform answers once installed: the first control plane's address on the node port.
func (in *Install) PlatformURL() string {
	return "http://" + in.firstControlPlane().Address + ":" + strconv.Itoa(in.Cluster.Spec.Platform.NodePort)
}

// platformPhase deploys the platform into wutong-system with server-side apply: its Secrets (the generated admin
// password, the registry login), a ConfigMap of the cluster CA and the trusted package signers, RBAC, a data
// volume, the Deployment and a NodePort Service; then it waits until the platform is available.
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
	node.Logf("dry run: would deploy %s into namespace %s and publish it on %s", p.in.platformImage(), PlatformNamespace, p.in.PlatformURL())
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
	objs, err := in.platformObjects(adminPassword, cr.user, cr.password, cr.caPEM)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if _, err := c.ApplyObject(ctx, o); err != nil {
			return err
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

// platformObjects are the platform's Kubernetes objects, in apply order.
func (in *Install) platformObjects(adminPassword, regUser, regPassword string, caPEM []byte) ([]*unstructured.Unstructured, error) {
	spec := in.Cluster.Spec
	size, err := resource.ParseQuantity(spec.Platform.StorageSize)
	if err != nil {
		return nil, fmt.Errorf("spec.platform.storageSize: %w", err)
	}
	labels := map[string]string{"app.kubernetes.io/name": platformName, "app.kubernetes.io/part-of": "wutong"}
	meta := func(n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: n, Namespace: PlatformNamespace, Labels: labels}
	}
	trust := map[string]string{"ca.crt": string(caPEM)}
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
	probe := func(delay int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(platformPort)}},
			InitialDelaySeconds: delay, PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 6}
	}
	secretEnv := func(env, secret, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}}
	}
	objs := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: PlatformNamespace, Labels: labels}},
		&corev1.Secret{ObjectMeta: meta(PlatformAdminSecret), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"username": []byte("admin"), "password": []byte(adminPassword)}},
		&corev1.Secret{ObjectMeta: meta("wutong-registry"), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"username": []byte(regUser), "password": []byte(regPassword)}},
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
		&corev1.PersistentVolumeClaim{ObjectMeta: meta("wutong-data"), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}}}},
		&appsv1.Deployment{ObjectMeta: meta(platformName), Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			// One writer of the SQLite file on a ReadWriteOnce volume: stop the old pod before the new one starts.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": platformName}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				ServiceAccountName: platformName,
				HostAliases:        aliases,
				SecurityContext:    &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid, RunAsNonRoot: &yes},
				Containers: []corev1.Container{{
					Name:  platformName,
					Image: in.platformImage(),
					Args: []string{"serve", "--data-dir", platformDataDir, "--listen", ":" + strconv.Itoa(platformPort),
						"--registry", registry, "--registry-user", regUser, "--registry-ca", "/etc/wutong/trust/ca.crt",
						"--trusted-keys", "/etc/wutong/trust", "--log-format", "json"},
					Env: []corev1.EnvVar{secretEnv("WUTONG_ADMIN_PASSWORD", PlatformAdminSecret, "password"),
						secretEnv("WUTONG_REGISTRY_PASSWORD", "wutong-registry", "password")},
					Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: platformPort}},
					ReadinessProbe: probe(5),
					LivenessProbe:  probe(30),
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
						Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: new(bool), ReadOnlyRootFilesystem: &yes},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: platformDataDir},
						{Name: "trust", MountPath: "/etc/wutong/trust", ReadOnly: true}, {Name: "tmp", MountPath: "/tmp"}},
				}},
				Volumes: []corev1.Volume{
					{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "wutong-data"}}},
					{Name: "trust", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "wutong-trust"}}}},
					{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				},
			}},
		}},
		&corev1.Service{ObjectMeta: meta(platformName), Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{"app.kubernetes.io/name": platformName},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(platformPort),
				NodePort: int32(spec.Platform.NodePort)}}}},
	}
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
