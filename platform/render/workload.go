package render

import (
	"fmt"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/wutong-paas/wutong-offline/platform/app"
)

// filesVolume is the pod volume of a component's config files. It starts with a digit, which the DNS-1035 names
// of model volumes cannot, so that it never clashes with one.
const filesVolume = "0-config-files"

// component renders one component's objects in apply order: what the workload consumes, its Services, the
// workload, its Ingress.
func (r *renderer) component(c app.Component, routes map[string]string) ([]*unstructured.Unstructured, error) {
	var objs, consumed []*unstructured.Unstructured
	w := r.workloads[c.Name]
	keys := fileKeys(c.ConfigFiles)
	if len(c.ConfigFiles) > 0 {
		data := map[string]string{}
		for _, f := range c.ConfigFiles {
			data[keys[f.Path]] = f.Content
		}
		cm, err := r.configMap(w+"-files", c.Name, data)
		if err != nil {
			return nil, err
		}
		objs = append(objs, cm)
		consumed = append(consumed, cm)
	}
	if s := r.conn[c.Name]; s != nil {
		objs = append(objs, s)
	}
	if c.Kind != app.KindStateful {
		pvcs, err := r.claims(c)
		if err != nil {
			return nil, err
		}
		objs = append(objs, pvcs...)
	}
	svcs, err := r.services(c)
	if err != nil {
		return nil, err
	}
	objs = append(objs, svcs...)

	// What the pod receives from outside, in the order envFrom lists it: config groups, then the connection info of
	// its dependencies. Validation refuses a key that two of these give (unless the component's env sets it).
	var envFrom []corev1.EnvFromSource
	for _, g := range r.a.ConfigGroups {
		if !slices.Contains(g.InjectInto, "*") && !slices.Contains(g.InjectInto, c.Name) {
			continue
		}
		o := r.shared[g.Name]
		if g.Secret {
			envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: o.GetName()}}})
		} else {
			envFrom = append(envFrom, corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: o.GetName()}}})
		}
		consumed = append(consumed, o)
	}
	for _, dep := range c.DependsOn {
		if s := r.conn[dep]; s != nil {
			envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: s.GetName()}}})
			consumed = append(consumed, s)
		}
	}
	tpl, err := r.podTemplate(c, keys, envFrom, configDigest(consumed))
	if err != nil {
		return nil, err
	}
	replicas := int32(*c.Replicas)
	if n, ok := r.in.Values.Replicas[c.Name]; ok {
		replicas = int32(n)
	}
	sel := &metav1.LabelSelector{MatchLabels: r.selector(c.Name)}
	var workload *unstructured.Unstructured
	if c.Kind == app.KindStateful {
		var templates []corev1.PersistentVolumeClaim
		for _, v := range c.Volumes {
			if v.From != "" {
				continue // refused by checkComponents for a stateful owner; a stateful component may mount a stateless one's
			}
			spec, err := claimSpec(v)
			if err != nil {
				return nil, err
			}
			// Kubernetes refuses changes to volumeClaimTemplates: their labels are only those that never change.
			labels := map[string]string{LabelApp: r.a.Key, LabelInstall: r.in.Install, LabelWorkload: w}
			templates = append(templates, corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: v.Name, Labels: labels},
				Spec:       spec})
		}
		workload, err = toUnstructured(&appsv1.StatefulSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: KindStatefulSet},
			ObjectMeta: r.objectMeta(w, c.Name),
			Spec: appsv1.StatefulSetSpec{Replicas: &replicas, Selector: sel, Template: tpl, ServiceName: w + "-headless",
				VolumeClaimTemplates: templates,
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
					WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType}},
		})
	} else {
		strategy := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
		if slices.ContainsFunc(c.Volumes, func(v app.Volume) bool { return v.From == "" && v.AccessMode == app.ReadWriteOnce }) {
			// A new pod could not attach the volume while an old one holds it: a rolling update would deadlock.
			strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		}
		workload, err = toUnstructured(&appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: KindDeployment},
			ObjectMeta: r.objectMeta(w, c.Name),
			Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Selector: sel, Template: tpl, Strategy: strategy},
		})
	}
	if err != nil {
		return nil, err
	}
	objs = append(objs, workload)
	ing, err := r.ingress(c, routes)
	if err != nil {
		return nil, err
	}
	if ing != nil {
		objs = append(objs, ing)
	}
	return objs, nil
}

// podTemplate renders a component's pod template.
func (r *renderer) podTemplate(c app.Component, keys map[string]string, envFrom []corev1.EnvFromSource, digest string) (corev1.PodTemplateSpec, error) {
	ctr := corev1.Container{
		Name:    c.Name,
		Image:   r.images[c.Name],
		Command: slices.Clone(c.Command),
		Args:    slices.Clone(c.Args),
		EnvFrom: envFrom,
		Env:     r.env(c),
	}
	for _, p := range c.Ports {
		ctr.Ports = append(ctr.Ports, corev1.ContainerPort{Name: effPortName(p), ContainerPort: int32(p.Port), Protocol: k8sProtocol(p)})
	}
	var err error
	if ctr.Resources, err = resources(c.Resources); err != nil {
		return corev1.PodTemplateSpec{}, err
	}
	ctr.LivenessProbe = probe(c.Probes.Liveness)
	ctr.ReadinessProbe = probe(c.Probes.Readiness)
	var vols []corev1.Volume
	if len(c.ConfigFiles) > 0 {
		src := &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: r.workloads[c.Name] + "-files"}}
		for _, f := range c.ConfigFiles {
			mode, err := strconv.ParseInt(f.Mode, 8, 32)
			if err != nil {
				return corev1.PodTemplateSpec{}, fmt.Errorf("config file %s: mode %q: %w", f.Path, f.Mode, err)
			}
			src.Items = append(src.Items, corev1.KeyToPath{Key: keys[f.Path], Path: keys[f.Path], Mode: new(int32(mode))})
			ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: filesVolume, MountPath: f.Path, SubPath: keys[f.Path], ReadOnly: true})
		}
		vols = append(vols, corev1.Volume{Name: filesVolume, VolumeSource: corev1.VolumeSource{ConfigMap: src}})
	}
	for _, v := range c.Volumes {
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: v.MountPath})
		switch {
		case v.From != "":
			vols = append(vols, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: r.workloads[v.From] + "-" + v.Name}}})
		case c.Kind != app.KindStateful:
			vols = append(vols, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: r.workloads[c.Name] + "-" + v.Name}}})
		}
		// A stateful component's own volumes come from its volumeClaimTemplates, by the same name.
	}
	spec := corev1.PodSpec{Containers: []corev1.Container{ctr}, Volumes: vols, NodeSelector: c.NodeSelector}
	for _, t := range c.Tolerations {
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOperator(t.Operator),
			Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	arches := c.Arches
	if len(arches) == 0 {
		arches = r.a.Arches
	}
	if len(arches) > 0 {
		spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelArchStable, Operator: corev1.NodeSelectorOpIn,
					Values: slices.Sorted(slices.Values(arches))}}}}}}}
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: r.podLabels(c.Name), Annotations: map[string]string{AnnotationConfigDigest: digest}},
		Spec:       spec,
	}, nil
}

// env is a component's explicit environment: the model's, in its order, with Values.Env overriding values of the
// same name and adding the others (by name).
func (r *renderer) env(c app.Component) []corev1.EnvVar {
	over := r.in.Values.Env[c.Name]
	var out []corev1.EnvVar
	seen := map[string]bool{}
	for _, e := range c.Env {
		v := e.Value
		if o, ok := over[e.Name]; ok {
			v = o
		}
		out = append(out, corev1.EnvVar{Name: e.Name, Value: v})
		seen[e.Name] = true
	}
	for _, k := range sortedKeys(over) {
		if !seen[k] {
			out = append(out, corev1.EnvVar{Name: k, Value: over[k]})
		}
	}
	return out
}

func resources(res app.Resources) (corev1.ResourceRequirements, error) {
	var out corev1.ResourceRequirements
	list := func(rl app.ResourceList, what string) (corev1.ResourceList, error) {
		l := corev1.ResourceList{}
		for _, q := range []struct {
			name corev1.ResourceName
			s    string
		}{{corev1.ResourceCPU, rl.CPU}, {corev1.ResourceMemory, rl.Memory}} {
			if q.s == "" {
				continue
			}
			v, err := resource.ParseQuantity(q.s)
			if err != nil {
				return nil, fmt.Errorf("resources.%s.%s %q: %w", what, q.name, q.s, err)
			}
			l[q.name] = v
		}
		if len(l) == 0 {
			return nil, nil
		}
		return l, nil
	}
	var err error
	if out.Requests, err = list(res.Requests, "requests"); err != nil {
		return out, err
	}
	out.Limits, err = list(res.Limits, "limits")
	return out, err
}

func probe(p *app.Probe) *corev1.Probe {
	if p == nil {
		return nil
	}
	out := &corev1.Probe{InitialDelaySeconds: int32(p.InitialDelaySeconds), PeriodSeconds: int32(p.PeriodSeconds),
		TimeoutSeconds: int32(p.TimeoutSeconds), FailureThreshold: int32(p.FailureThreshold)}
	switch {
	case p.HTTP != nil:
		out.HTTPGet = &corev1.HTTPGetAction{Path: p.HTTP.Path, Port: intstr.FromInt32(int32(p.HTTP.Port))}
	case p.TCP != nil:
		out.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(p.TCP.Port))}
	case p.Exec != nil:
		out.Exec = &corev1.ExecAction{Command: slices.Clone(p.Exec.Command)}
	}
	return out
}
