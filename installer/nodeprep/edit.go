package nodeprep

import (
	"fmt"
	"slices"
	"strings"
)

// These are pure edits of configuration file contents. Each returns the new content and whether it differs, and
// leaves every line it does not own exactly as it was.

// commentSwap comments out the active swap entries of an fstab: lines whose third field is "swap".
func commentSwap(fstab string) (string, bool) {
	lines := strings.SplitAfter(fstab, "\n")
	changed := false
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if f := strings.Fields(t); len(f) >= 3 && f[2] == "swap" {
			lines[i] = "# disabled by wutong-offline (kubelet needs swap off): " + l
			changed = true
		}
	}
	return strings.Join(lines, ""), changed
}

// Markers of the block this package owns in /etc/hosts.
const (
	hostsBegin = "# BEGIN wutong-offline: managed by wtctl, edits between these lines are replaced"
	hostsEnd   = "# END wutong-offline"
)

// HostEntry is one line of the managed /etc/hosts block.
type HostEntry struct {
	IP    string   `json:"ip"`
	Names []string `json:"names"`
}

// hostsBlock replaces (or appends) the managed block of an /etc/hosts file with entries.
func hostsBlock(hosts string, entries []HostEntry) (string, bool) {
	var b strings.Builder
	b.WriteString(hostsBegin + "\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "%s\t%s\n", e.IP, strings.Join(e.Names, " "))
	}
	b.WriteString(hostsEnd + "\n")
	block := b.String()

	start := strings.Index(hosts, hostsBegin)
	end := strings.Index(hosts, hostsEnd)
	var out string
	if start >= 0 && end > start {
		stop := end + len(hostsEnd)
		if stop < len(hosts) && hosts[stop] == '\n' {
			stop++
		}
		out = hosts[:start] + block + hosts[stop:]
	} else {
		out = hosts
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += block
	}
	return out, out != hosts
}

// selinuxPermissive turns SELINUX=enforcing into SELINUX=permissive in /etc/selinux/config. disabled stays.
func selinuxPermissive(config string) (string, bool) {
	lines := strings.SplitAfter(config, "\n")
	changed := false
	for i, l := range lines {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok && strings.TrimSpace(k) == "SELINUX" && strings.EqualFold(strings.Trim(strings.TrimSpace(v), `"'`), "enforcing") {
			nl := ""
			if strings.HasSuffix(l, "\n") {
				nl = "\n"
			}
			lines[i] = "SELINUX=permissive" + nl
			changed = true
		}
	}
	return strings.Join(lines, ""), changed
}

// sysctlFile renders a sysctl.d file for settings, sorted by key.
func sysctlFile(settings map[string]string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("# Written by wtctl (wutong-offline): what Kubernetes networking needs.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, settings[k])
	}
	return b.String()
}

// modulesFile renders a modules-load.d file.
func modulesFile(modules []string) string {
	return "# Written by wtctl (wutong-offline): loaded at boot for Kubernetes.\n" + strings.Join(modules, "\n") + "\n"
}
