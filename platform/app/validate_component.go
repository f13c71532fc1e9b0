package app

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/distribution/reference"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"

	"github.com/wutong-paas/wutong-offline/internal/yamlnode"
)

var (
	// portName is an IANA service name, as Kubernetes port names are.
	portName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$`)
	modeRE   = regexp.MustCompile(`^0?[0-7]{3}$`)
)

// volumeIndex finds the volumes a component declares (not those it mounts from others), by component and name.
type volumeIndex map[string]map[string]volumeAt

type volumeAt struct {
	v    Volume
	path string
}

func newVolumeIndex(a *App) volumeIndex {
	vi := volumeIndex{}
	for i, c := range a.Components {
		if vi[c.Name] != nil {
			continue // a repeated component name: the first one counts
		}
		vi[c.Name] = map[string]volumeAt{}
		for j, v := range c.Volumes {
			if v.From == "" {
				vi[c.Name][v.Name] = volumeAt{v, fmt.Sprintf("components[%d].volumes[%d]", i, j)}
			}
		}
	}
	return vi
}

// checkComponent checks a.Components[i] on its own and against the components it refers to.
func checkComponent(l *lister, a *App, i int, vi volumeIndex) {
	c := &a.Components[i]
	p := fmt.Sprintf("components[%d]", i)
	switch {
	case c.Name == "":
		l.add(p+".name", "is missing", "name the component, such as web; the name is its identity across versions")
	case !dnsLabel.MatchString(c.Name):
		l.addf(p+".name", dnsLabelFix+" (it names a Kubernetes Service)", "%q is not a valid component name", c.Name)
	}
	checkImage(l, p+".image", c.Image)
	if c.Kind != "" && c.Kind != KindStateless && c.Kind != KindStateful {
		l.addf(p+".kind", "use stateless (a Deployment) or stateful (a StatefulSet)", "unknown kind %q", c.Kind)
	}
	if c.Replicas != nil && *c.Replicas < 0 {
		l.addf(p+".replicas", "use 0 or more", "is %d", *c.Replicas)
	}
	checkResources(l, p+".resources", c.Resources)
	ports := checkPorts(l, p, c.Ports)
	checkEnv(l, p+".env", c.Env)
	checkEnv(l, p+".connectionInfo", c.ConnectionInfo)
	mounts := checkVolumes(l, a, p, c, vi)
	checkConfigFiles(l, p, c.ConfigFiles, mounts)
	checkProbe(l, p+".probes.liveness", c.Probes.Liveness, ports)
	checkProbe(l, p+".probes.readiness", c.Probes.Readiness, ports)
	checkDependsOn(l, a, p, c)
	for _, k := range yamlnode.SortedKeys(c.NodeSelector) {
		v := c.NodeSelector[k]
		kp := yamlnode.KeyPath(p+".nodeSelector", k)
		if errs := content.IsLabelKey(k); len(errs) > 0 {
			l.addf(kp, "use a node label key such as kubernetes.io/hostname", "%q is not a valid label key: %s", k, errs[0])
		}
		if errs := content.IsLabelValue(v); len(errs) > 0 {
			l.addf(kp, "use at most 63 letters, digits, '-', '_' and '.'", "%q is not a valid label value", v)
		}
	}
	for j, t := range c.Tolerations {
		checkToleration(l, fmt.Sprintf("%s.tolerations[%d]", p, j), t)
	}
	checkArches(l, p+".arches", c.Arches, a.Arches)
}

func checkImage(l *lister, p, image string) {
	if image == "" {
		l.add(p, "is missing", "give the container image, such as example.com/demo/web:1.0")
		return
	}
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		l.addf(p, "use a reference such as example.com/demo/web:1.0", "%q is not a valid image reference: %v", image, err)
		return
	}
	_, tagged := ref.(reference.Tagged)
	_, digested := ref.(reference.Digested)
	if !tagged && !digested {
		l.addf(p, "add a tag such as :1.0 or a digest, so that the package holds a known image", "%q has no tag or digest", image)
	}
}

func checkResources(l *lister, p string, r Resources) {
	req := checkResourceList(l, p+".requests", r.Requests)
	lim := checkResourceList(l, p+".limits", r.Limits)
	for _, name := range []string{"cpu", "memory"} {
		if rq, lm := req[name], lim[name]; rq != nil && lm != nil && lm.Cmp(*rq) < 0 {
			l.addf(p+".limits."+name, "raise the limit or lower the request", "limit %s is less than request %s", lm, rq)
		}
	}
}

func checkResourceList(l *lister, p string, rl ResourceList) map[string]*resource.Quantity {
	out := map[string]*resource.Quantity{}
	for _, f := range [][3]string{{"cpu", rl.CPU, "500m or 2"}, {"memory", rl.Memory, "256Mi or 2Gi"}} {
		name, s, example := f[0], f[1], f[2]
		if s == "" {
			continue
		}
		q, err := resource.ParseQuantity(s)
		switch {
		case err != nil:
			l.addf(p+"."+name, "use a Kubernetes quantity such as "+example, "%q is not a quantity", s)
		case q.Sign() < 0:
			l.addf(p+"."+name, "use a quantity such as "+example, "%q is negative", s)
		default:
			out[name] = &q
		}
	}
	return out
}

// checkPorts checks a component's ports and returns them by number.
func checkPorts(l *lister, p string, ports []Port) map[int]Port {
	byNum := map[int]Port{}
	names := map[string]bool{}
	for j, pt := range ports {
		pp := fmt.Sprintf("%s.ports[%d]", p, j)
		if pt.Port < 1 || pt.Port > 65535 {
			l.addf(pp+".port", "use a port from 1 to 65535", "port %d is out of range", pt.Port)
		} else if _, dup := byNum[pt.Port]; dup {
			l.addf(pp+".port", "list each port once", "port %d is listed twice", pt.Port)
		} else {
			byNum[pt.Port] = pt
		}
		proto := effProtocol(pt)
		if !slices.Contains([]string{ProtocolTCP, ProtocolUDP, ProtocolHTTP, ProtocolGRPC}, proto) {
			l.addf(pp+".protocol", "use tcp, udp, http or grpc", "unknown protocol %q", pt.Protocol)
		}
		expose := effExpose(pt)
		if expose != ExposeInternal && expose != ExposeExternal {
			l.addf(pp+".expose", "use internal or external", "unknown expose %q", pt.Expose)
		}
		name := effPortName(pt)
		switch {
		case pt.Name != "" && (!portName.MatchString(pt.Name) || strings.Contains(pt.Name, "--") ||
			!strings.ContainsAny(pt.Name, "abcdefghijklmnopqrstuvwxyz")):
			l.addf(pp+".name", "use at most 15 lowercase letters, digits and '-', with at least one letter, such as http",
				"%q is not a valid port name", pt.Name)
		case names[name]:
			l.addf(pp+".name", "give each port its own name", "port name %q is used twice", name)
		}
		names[name] = true
		if proto != ProtocolHTTP {
			if pt.Domain != "" {
				l.add(pp+".domain", "is only for http ports", "set protocol: http, or remove domain")
			}
			if pt.Path != "" {
				l.add(pp+".path", "is only for http ports", "set protocol: http, or remove path")
			}
			continue
		}
		if expose != ExposeExternal {
			if pt.Domain != "" {
				l.add(pp+".domain", "is only for external ports", "set expose: external, or remove domain")
			}
			if pt.Path != "" {
				l.add(pp+".path", "is only for external ports", "set expose: external, or remove path")
			}
			continue
		}
		if pt.Domain != "" && len(content.IsDNS1123Subdomain(pt.Domain)) > 0 {
			l.addf(pp+".domain", "use a host name such as demo.example.com (lowercase, no scheme or port)", "%q is not a valid domain", pt.Domain)
		}
		if pt.Path != "" && !strings.HasPrefix(pt.Path, "/") {
			l.addf(pp+".path", "start it with /, such as /"+pt.Path, "%q does not start with /", pt.Path)
		}
	}
	return byNum
}

func checkEnv(l *lister, p string, env []EnvVar) {
	seen := map[string]bool{}
	for j, e := range env {
		ep := fmt.Sprintf("%s[%d].name", p, j)
		switch {
		case e.Name == "":
			l.add(ep, "is missing", "name the variable, such as LOG_LEVEL")
		case !envName.MatchString(e.Name):
			l.addf(ep, envNameFix, "%q is not a valid environment variable name", e.Name)
		case seen[e.Name]:
			l.addf(ep, "set each variable once", "%s is set twice", e.Name)
		}
		seen[e.Name] = true
	}
}

// checkAbsPath checks a path in the container: absolute, clean and not the root.
func checkAbsPath(l *lister, p, s, what string) bool {
	switch {
	case s == "":
		l.add(p, "is missing", "give the absolute path of the "+what+" in the container, such as /etc/app/config.yaml")
	case !strings.HasPrefix(s, "/") || s == "/":
		l.addf(p, "give an absolute path below /, such as /data", "%q is not an absolute path below /", s)
	case path.Clean(s) != s:
		l.addf(p, "write it as "+path.Clean(s), "%q is not a clean path", s)
	default:
		return true
	}
	return false
}

// checkVolumes checks a component's volumes and returns their mount paths.
func checkVolumes(l *lister, a *App, p string, c *Component, vi volumeIndex) map[string]bool {
	names, mounts := map[string]bool{}, map[string]bool{}
	for j, v := range c.Volumes {
		vp := fmt.Sprintf("%s.volumes[%d]", p, j)
		switch {
		case v.Name == "":
			l.add(vp+".name", "is missing", "name the volume, such as data")
		case !dnsLabel.MatchString(v.Name):
			l.addf(vp+".name", dnsLabelFix, "%q is not a valid volume name", v.Name)
		case names[v.Name]:
			l.addf(vp+".name", "give each volume its own name", "volume %q is listed twice", v.Name)
		}
		names[v.Name] = true
		if checkAbsPath(l, vp+".mountPath", v.MountPath, "mount point") {
			if mounts[v.MountPath] {
				l.addf(vp+".mountPath", "mount each volume on its own path", "%s is already a mount path of this component", v.MountPath)
			}
			mounts[v.MountPath] = true
		}
		if v.From != "" {
			checkSharedVolume(l, a, vp, c, v, vi)
			continue
		}
		switch q, err := resource.ParseQuantity(v.Size); {
		case v.Size == "":
			l.add(vp+".size", "is missing", "give the capacity, such as 10Gi")
		case err != nil:
			l.addf(vp+".size", "use a quantity such as 10Gi", "%q is not a quantity", v.Size)
		case q.Sign() <= 0:
			l.addf(vp+".size", "use a quantity such as 10Gi", "%q is not more than zero", v.Size)
		}
		if m := v.AccessMode; m != "" && m != ReadWriteOnce && m != ReadWriteMany && m != ReadOnlyMany {
			l.addf(vp+".accessMode", "use ReadWriteOnce, ReadWriteMany or ReadOnlyMany", "unknown access mode %q", m)
		}
	}
	return mounts
}

// checkSharedVolume checks a mount of another component's volume.
func checkSharedVolume(l *lister, a *App, vp string, c *Component, v Volume, vi volumeIndex) {
	if v.Size != "" {
		l.add(vp+".size", "is set on a volume mounted from another component", "remove it; the size is the owner's")
	}
	if v.AccessMode != "" {
		l.add(vp+".accessMode", "is set on a volume mounted from another component", "remove it; the access mode is the owner's")
	}
	owner, ok := vi[v.From]
	switch {
	case v.From == c.Name:
		l.add(vp+".from", "names this component itself", "remove from: a component's own volume is declared with a size")
	case !ok:
		l.add(vp+".from", fmt.Sprintf("%q is not a component of this app", v.From), unknownComponentFix(v.From, l.names))
	default:
		src, ok := owner[v.Name]
		if !ok {
			l.addf(vp+".name", fmt.Sprintf("declare volume %s on %s (with a size and accessMode: ReadWriteMany), or mount one it has", v.Name, v.From),
				"component %s has no volume %q", v.From, v.Name)
			return
		}
		if src.v.AccessMode != ReadWriteMany {
			l.addf(vp+".from", fmt.Sprintf("set accessMode: ReadWriteMany on %s", l.namer.name(src.path)),
				"volume %s of %s is %s; a volume other components mount must be ReadWriteMany", v.Name, v.From, effAccessMode(src.v))
		}
	}
}

func checkConfigFiles(l *lister, p string, files []ConfigFile, mounts map[string]bool) {
	seen := map[string]bool{}
	for j, f := range files {
		fp := fmt.Sprintf("%s.configFiles[%d]", p, j)
		if checkAbsPath(l, fp+".path", f.Path, "file") {
			switch {
			case seen[f.Path]:
				l.addf(fp+".path", "give each file its own path", "%s is listed twice", f.Path)
			case mounts[f.Path]:
				l.addf(fp+".path", "use a path that is not a volume's mount path", "%s is also a volume's mount path", f.Path)
			}
			seen[f.Path] = true
		}
		switch {
		case f.File != "" && f.Content != "":
			l.add(fp, "has both content and file", "keep one: content inline, or file to read it from next to app.yaml")
		case f.File != "":
			l.addf(fp+".file", "load app.yaml from its directory (app.Load), or put the content inline",
				"%q is not read: file sources are read when app.yaml is loaded from a directory", f.File)
		case len(f.Content) > maxConfigFileSize:
			l.addf(fp+".content", "put large data in the image or a volume", "is larger than %d bytes", maxConfigFileSize)
		case !utf8.ValidString(f.Content):
			l.add(fp+".content", "is not UTF-8 text", "config files hold text; put binary data in the image")
		}
		if f.Mode != "" && !modeRE.MatchString(f.Mode) {
			l.addf(fp+".mode", "use an octal mode from 0000 to 0777, such as 0644 or \"0600\"", "%q is not an octal file mode", f.Mode)
		}
	}
}

func checkProbe(l *lister, p string, pr *Probe, ports map[int]Port) {
	if pr == nil {
		return
	}
	n := 0
	for _, set := range []bool{pr.HTTP != nil, pr.TCP != nil, pr.Exec != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		l.addf(p, "give exactly one of http, tcp and exec", "has %d kinds of check", n)
	}
	port := func(pp string, num int, what string) {
		pt, ok := ports[num]
		switch {
		case !ok:
			l.addf(pp, "use one of the component's ports, or list this one under ports", "port %d is not one of the component's ports", num)
		case effProtocol(pt) == ProtocolUDP:
			l.addf(pp, "probe a tcp, http or grpc port, or use exec", "port %d is udp; %s", num, what)
		}
	}
	if pr.HTTP != nil {
		port(p+".http.port", pr.HTTP.Port, "an http check needs a TCP port")
		if pr.HTTP.Path != "" && !strings.HasPrefix(pr.HTTP.Path, "/") {
			l.addf(p+".http.path", "start it with /, such as /"+pr.HTTP.Path, "%q does not start with /", pr.HTTP.Path)
		}
	}
	if pr.TCP != nil {
		port(p+".tcp.port", pr.TCP.Port, "a tcp check needs a TCP port")
	}
	if pr.Exec != nil && len(pr.Exec.Command) == 0 {
		l.add(p+".exec.command", "is empty", "give the command to run, such as [pg_isready, -U, postgres]")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"initialDelaySeconds", pr.InitialDelaySeconds}, {"periodSeconds", pr.PeriodSeconds},
		{"timeoutSeconds", pr.TimeoutSeconds}, {"failureThreshold", pr.FailureThreshold}} {
		if f.v < 0 {
			l.addf(p+"."+f.name, "use 0 (the default) or more", "is %d", f.v)
		}
	}
}

func checkDependsOn(l *lister, a *App, p string, c *Component) {
	seen := map[string]bool{}
	names := l.names
	for j, dep := range c.DependsOn {
		dp := fmt.Sprintf("%s.dependsOn[%d]", p, j)
		switch {
		case dep == c.Name:
			l.add(dp, "names this component itself", "remove it")
		case seen[dep]:
			l.addf(dp, "remove the repeat", "%q is listed twice", dep)
		case !sortedContains(names, dep):
			l.add(dp, fmt.Sprintf("%q is not a component of this app", dep), unknownComponentFix(dep, names))
		}
		seen[dep] = true
	}
}

func checkToleration(l *lister, p string, t Toleration) {
	op := effOperator(t)
	switch op {
	case TolerationEqual:
		if t.Key == "" {
			l.add(p+".key", "is missing", "give the taint key, or use operator: Exists to tolerate every taint")
		}
	case TolerationExists:
		if t.Value != "" {
			l.add(p+".value", "is set with operator Exists", "remove the value, or use operator: Equal")
		}
	default:
		l.addf(p+".operator", "use Equal or Exists", "unknown operator %q", t.Operator)
	}
	if t.Key != "" {
		if errs := content.IsLabelKey(t.Key); len(errs) > 0 {
			l.addf(p+".key", "use a taint key such as node-role.kubernetes.io/control-plane", "%q is not a valid taint key", t.Key)
		}
	}
	switch t.Effect {
	case "", "NoSchedule", "PreferNoSchedule", "NoExecute":
	default:
		l.addf(p+".effect", "use NoSchedule, PreferNoSchedule or NoExecute, or leave it out to match all", "unknown effect %q", t.Effect)
	}
}
