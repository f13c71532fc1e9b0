package preflight

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
	"github.com/wutong-paas/wutong-offline/internal/progress"
)

// rule checks one host. Rules read facts only; they never touch the node.
type rule struct {
	id    string
	check func(c *checker, n Node) []Finding
}

// rules run in this order, top to bottom, on every reachable host.
var rules = []rule{
	{"os", checkOS},
	{"arch", checkArch},
	{"resources", checkResources},
	{"disk", checkDisk},
	{"unique", checkUnique},
	{"clock", checkClock},
	{"swap", checkSwap},
	{"ports", checkPorts},
	{"runtime", checkRuntime},
	{"modules", checkModules},
	{"systemd", checkSystemd},
	{"cgroup", checkCgroup},
	{"commands", checkCommands},
	{"selinux", checkSELinux},
	{"firewalld", checkFirewalld},
}

// text is one message in both languages; both are fmt formats taking the same arguments.
type text struct{ en, zh string }

func (c *checker) finding(id string, sev Severity, msg, fix text, args ...any) Finding {
	pick := func(t text) string {
		if c.in.Lang == i18n.ZH {
			return t.zh
		}
		return t.en
	}
	// A remediation takes the message's arguments through explicit indexes (%[1]s), using only those it needs.
	remedy := pick(fix)
	if strings.Contains(remedy, "%[") {
		remedy = fmt.Sprintf(remedy, args...)
	}
	return Finding{Rule: id, Severity: sev, Message: fmt.Sprintf(pick(msg), args...), Remediation: remedy}
}

// supported lists the OS releases the installer supports: os-release ID → accepted VERSION_ID prefixes.
var supported = map[string][]string{
	"kylin":     {"V10"},
	"uos":       {"20"},
	"openeuler": {"22.03", "24.03"},
	"anolis":    {"8"},
	"rocky":     {"8", "9"},
	"centos":    {"8", "9"},
	"rhel":      {"8", "9"},
	"debian":    {"11", "12"},
	"ubuntu":    {"20.04", "22.04", "24.04"},
}

const supportedList = "Kylin V10 SP1/SP2/SP3/SP3-2403, UOS 20, openEuler 22.03/24.03, Anolis 8, CentOS/Rocky/RHEL 8-9, Debian 11-12, Ubuntu 20.04/22.04/24.04"

func checkOS(c *checker, n Node) []Finding {
	o := n.Facts.OS
	name := strings.TrimSpace(o.PrettyName)
	if name == "" {
		name = o.ID + " " + o.VersionID
	}
	prefixes, ok := supported[o.ID]
	versionOK := false
	for _, p := range prefixes {
		if o.VersionID == p || strings.HasPrefix(o.VersionID, p+".") {
			versionOK = true
		}
	}
	if !ok || !versionOK {
		return []Finding{c.finding("os", Error,
			text{"unsupported operating system %q (ID=%s VERSION_ID=%s)", "不支持的操作系统 %q（ID=%s VERSION_ID=%s）"},
			text{"install one of: " + supportedList, "请改用以下系统之一：" + supportedList},
			name, o.ID, o.VersionID)}
	}
	if o.ID == "kylin" && o.ServicePack == "" {
		return []Finding{c.finding("os", Warning,
			text{"Kylin V10 service pack not recognised from %q", "无法从 %q 识别麒麟 V10 的 SP 版本"},
			text{"check /etc/os-release and /etc/.productinfo; SP1 (Tercel), SP2 (Sword), SP3 (Lance) and SP3-2403 (Halberd) are tested", "请检查 /etc/os-release 与 /etc/.productinfo；已验证 SP1（Tercel）、SP2（Sword）、SP3（Lance）、SP3-2403（Halberd）"},
			o.Version)}
	}
	return nil
}

func checkArch(c *checker, n Node) []Finding {
	p := c.in.Payload
	if p == nil {
		return nil
	}
	if !slices.Contains(p.Arches, n.Facts.Arch) {
		return []Finding{c.finding("arch", Error,
			text{"the bundle has no payload for this node's arch %s (%s); it carries %s", "离线包不含本节点架构 %s（%s）的安装内容；离线包只含 %s"},
			text{"use a bundle built for %[1]s, or leave this host out of cluster.yaml", "请使用包含 %[1]s 架构的离线包，或从 cluster.yaml 中去掉该主机"},
			n.Facts.Arch, n.Facts.Machine, strings.Join(p.Arches, ", "))}
	}
	return nil
}

func checkResources(c *checker, n Node) []Finding {
	var out []Finding
	f := n.Facts
	for _, r := range n.Host.Roles {
		if min := c.limits.CPUs[r]; f.CPUs < min {
			out = append(out, c.finding("resources", Error,
				text{"%d CPU(s); a %s needs at least %d", "CPU %d 核；%s 至少需要 %d 核"},
				text{"give the machine more CPUs, or give it a lighter role", "请为该机器增加 CPU，或改为较轻的角色"},
				f.CPUs, r, min))
		}
		if min := c.limits.Memory[r]; f.MemoryBytes < min {
			out = append(out, c.finding("resources", Error,
				text{"%s of memory; a %s needs at least %s", "内存 %s；%s 至少需要 %s"},
				text{"give the machine more memory, or give it a lighter role", "请为该机器增加内存，或改为较轻的角色"},
				bytesIEC(f.MemoryBytes), r, bytesIEC(min)))
		}
	}
	return out
}

func checkDisk(c *checker, n Node) []Finding {
	p := c.in.Payload
	if p == nil {
		return nil
	}
	need := map[string]int64{
		"/opt/wutong":         p.Files[n.Facts.Arch] + p.Images, // the node's payload
		"/var/lib/containerd": p.Images,                         // images unpacked by the runtime
	}
	if n.Host.HasRole(cluster.RoleRegistry) {
		need["/var/lib/wutong"] = p.Images // the registry's storage
	}
	// Paths on one file system share its free space: add up their needs.
	type fsNeed struct {
		paths []string
		need  int64
		free  uint64
	}
	byDev := map[uint64]*fsNeed{}
	var order []uint64
	for _, d := range n.Facts.Disks {
		b, ok := need[d.Path]
		if !ok {
			continue
		}
		g := byDev[d.Device]
		if g == nil {
			g = &fsNeed{free: d.FreeBytes}
			byDev[d.Device] = g
			order = append(order, d.Device)
		}
		g.paths = append(g.paths, d.Path)
		g.need += int64(float64(b) * c.limits.DiskSlack)
	}
	var out []Finding
	for _, dev := range order {
		g := byDev[dev]
		want := uint64(g.need + c.limits.DiskExtra)
		if g.free < want {
			out = append(out, c.finding("disk", Error,
				text{"%s: %s free, needs %s (%.1f× the payload plus %s)", "%s：可用 %s，需要 %s（安装内容的 %.1f 倍再加 %s）"},
				text{"free space on the file system holding %[1]s, or mount a larger disk there", "请清理 %[1]s 所在文件系统的空间，或在该处挂载更大的磁盘"},
				strings.Join(g.paths, ", "), bytesIEC(g.free), bytesIEC(want), c.limits.DiskSlack, bytesIEC(uint64(c.limits.DiskExtra))))
		}
	}
	return out
}

func checkUnique(c *checker, n Node) []Finding {
	var out []Finding
	for _, other := range c.in.Nodes {
		if other.Host.Name == n.Host.Name || other.Facts == nil {
			continue
		}
		o := other.Facts
		if o.Hostname == n.Facts.Hostname {
			out = append(out, c.finding("unique", Error,
				text{"hostname %q is also the hostname of %s", "主机名 %q 与 %s 重复"},
				text{"give every node its own hostname (hostnamectl set-hostname NAME), then run preflight again", "请为每台机器设置不同的主机名（hostnamectl set-hostname 名称）后重新检查"},
				n.Facts.Hostname, other.Host.Name))
		}
		if o.MachineID != "" && o.MachineID == n.Facts.MachineID {
			out = append(out, c.finding("unique", Error,
				text{"machine-id %s is also the machine-id of %s (a cloned VM?)", "machine-id %s 与 %s 相同（虚拟机是克隆的？）"},
				text{"regenerate it: rm /etc/machine-id && systemd-machine-id-setup, then reboot", "请重新生成：rm /etc/machine-id && systemd-machine-id-setup，然后重启"},
				n.Facts.MachineID, other.Host.Name))
		}
		if ip := n.Facts.DefaultIP; ip != "" && slices.Contains(o.IPs, ip) {
			out = append(out, c.finding("unique", Error,
				text{"address %s is also configured on %s", "地址 %s 也配置在 %s 上"},
				text{"fix the network configuration so that every node has its own address", "请修改网络配置，确保每台机器地址唯一"},
				ip, other.Host.Name))
		}
	}
	return out
}

func checkClock(c *checker, n Node) []Finding {
	skew := n.Skew
	if skew < 0 {
		skew = -skew
	}
	if skew > c.limits.MaxSkew {
		return []Finding{c.finding("clock", Error,
			text{"clock differs from this machine's by %s (at most %s)", "时钟与本机相差 %s（最多允许 %s）"},
			text{"set the time (date -s, or an internal NTP/chrony server), then run preflight again", "请校准时间（date -s，或内网 NTP/chrony 服务器）后重新检查"},
			skew.Round(1e9), c.limits.MaxSkew)}
	}
	return nil
}

func checkSwap(c *checker, n Node) []Finding {
	if n.Facts.SwapBytes > 0 {
		return []Finding{c.finding("swap", Warning,
			text{"swap is on (%s); kubelet needs it off", "已启用交换分区（%s）；kubelet 要求关闭"},
			text{"the installer turns swap off and comments it out of /etc/fstab; to do it now: swapoff -a", "安装程序会关闭交换分区并在 /etc/fstab 中注释掉；也可立即执行：swapoff -a"},
			bytesIEC(n.Facts.SwapBytes))}
	}
	return nil
}

// portsFor are the ports a host's roles need free.
func (c *checker) portsFor(h cluster.Host) map[int]string {
	ports := map[int]string{10250: "kubelet"}
	if h.HasRole(cluster.RoleControlPlane) {
		ports[6443] = "kube-apiserver"
		ports[2379] = "etcd client"
		ports[2380] = "etcd peer"
		ports[10257] = "kube-controller-manager"
		ports[10259] = "kube-scheduler"
	}
	if h.HasRole(cluster.RoleRegistry) {
		port := c.in.Cluster.Spec.Registry.Port
		if port == 0 {
			port = 5443
		}
		ports[port] = "registry"
	}
	if c.in.Ingress && (h.HasRole(cluster.RoleControlPlane) || h.HasRole(cluster.RoleWorker)) {
		for _, p := range cluster.IngressPorts {
			if _, taken := ports[p]; !taken {
				ports[p] = "ingress controller"
			}
		}
	}
	return ports
}

// portFix is how to free a port; the ingress controller's can also be given up.
func portFix(port int, who string) text {
	if who == "ingress controller" {
		return text{"find the program with: ss -ltnp 'sport = :%[1]d', then stop it or move it to another port; or set spec.ingress.enabled: false (apps then get no Ingress, only NodePorts)",
			"用 ss -ltnp 'sport = :%[1]d' 找到占用的程序，停止它或改用其他端口；或设置 spec.ingress.enabled: false（应用将只有 NodePort，没有 Ingress）"}
	}
	return text{"find the program with: ss -ltnp 'sport = :%[1]d', then stop it or move it to another port", "用 ss -ltnp 'sport = :%[1]d' 找到占用的程序，停止它或改用其他端口"}
}

func checkPorts(c *checker, n Node) []Finding {
	want := c.portsFor(n.Host)
	for _, p := range c.in.Owned[n.Host.Name] {
		delete(want, p)
	}
	var out []Finding
	seen := map[int]bool{}
	for _, p := range n.Facts.Listening {
		if !strings.HasPrefix(p.Proto, "tcp") || seen[p.Port] {
			continue
		}
		if who, ok := want[p.Port]; ok {
			seen[p.Port] = true
			out = append(out, c.finding("ports", Error,
				text{"port %d (%s) is already in use on %s", "端口 %d（%s）已被占用（%s）"},
				portFix(p.Port, who), p.Port, who, p.Addr))
		}
	}
	slices.SortFunc(out, func(a, b Finding) int { return strings.Compare(a.Message, b.Message) })
	return out
}

func checkRuntime(c *checker, n Node) []Finding {
	var out []Finding
	for _, r := range n.Facts.Runtimes {
		if slices.Contains(c.in.OwnedRuntimes[n.Host.Name], r.Name) {
			continue
		}
		if r.Running {
			out = append(out, c.finding("runtime", Error,
				text{"%s is already running (%s)", "%s 已在运行（%s）"},
				text{"this node already runs a container runtime or Kubernetes; stop and remove %[1]s (or use a clean server)", "该节点已运行容器运行时或 Kubernetes；请停止并卸载 %[1]s（或改用干净的服务器）"},
				r.Name, r.Path))
		} else {
			out = append(out, c.finding("runtime", Warning,
				text{"%s is installed but not running (%s)", "已安装 %s 但未运行（%s）"},
				text{"remove it so that it cannot start later and fight the installed runtime", "请卸载它，以免日后启动与安装的运行时冲突"},
				r.Name, r.Path))
		}
	}
	return out
}

func checkModules(c *checker, n Node) []Finding {
	var out []Finding
	for _, m := range n.Facts.Modules {
		if m.Loaded || m.Available {
			continue
		}
		sev := Error
		if m.Name == "ip_vs" {
			sev = Warning // only kube-proxy's IPVS mode needs it
		}
		out = append(out, c.finding("modules", sev,
			text{"kernel module %s is neither loaded nor available for kernel %s", "内核模块 %s 既未加载，也不存在于内核 %s 中"},
			text{"install the kernel's modules package (kernel-modules / linux-modules-extra) or use a kernel built with %[1]s", "请安装内核模块包（kernel-modules / linux-modules-extra），或使用包含 %[1]s 的内核"},
			m.Name, n.Facts.Kernel))
	}
	return out
}

func checkSystemd(c *checker, n Node) []Finding {
	if !n.Facts.Systemd {
		return []Finding{c.finding("systemd", Error,
			text{"the system was not booted with systemd", "系统不是由 systemd 启动的"},
			text{"containerd, kubelet and the registry run as systemd services: use a systemd-based OS", "containerd、kubelet 与镜像仓库以 systemd 服务运行：请使用基于 systemd 的系统"})}
	}
	return nil
}

func checkCgroup(c *checker, n Node) []Finding {
	if n.Facts.CgroupVersion == 1 {
		return []Finding{c.finding("cgroup", Warning,
			text{"cgroup v1 (kernel %s): kubelet 1.35 and later refuse cgroup v1 unless failCgroupV1 is false", "cgroup v1（内核 %s）：kubelet 1.35 及以上默认拒绝 cgroup v1，除非设置 failCgroupV1: false"},
			text{"nothing to do: the installer sets failCgroupV1: false for this node. Kylin V10 and UOS 20 run 4.19 kernels with cgroup v1; cgroup v1 support in Kubernetes is in maintenance mode, so plan a move to cgroup v2 (systemd.unified_cgroup_hierarchy=1)", "无需操作：安装程序会为该节点设置 failCgroupV1: false。麒麟 V10 与 UOS 20 使用 4.19 内核与 cgroup v1；Kubernetes 对 cgroup v1 仅做维护，建议规划迁移到 cgroup v2（systemd.unified_cgroup_hierarchy=1）"},
			n.Facts.Kernel)}
	}
	return nil
}

// requiredCommands stop the install when missing; the other facts.DefaultCommands only warn.
var requiredCommands = []string{"systemctl", "mount", "umount", "nsenter", "ip", "modprobe", "sysctl"}

func checkCommands(c *checker, n Node) []Finding {
	var missing, optional []string
	for _, cmd := range n.Facts.Commands {
		if cmd.Path != "" {
			continue
		}
		if slices.Contains(requiredCommands, cmd.Name) {
			missing = append(missing, cmd.Name)
		} else {
			optional = append(optional, cmd.Name)
		}
	}
	var out []Finding
	if len(missing) > 0 {
		out = append(out, c.finding("commands", Error,
			text{"missing commands: %s", "缺少命令：%s"},
			text{"install them from the OS installation media (util-linux, iproute2, kmod, procps, systemd)", "请从系统安装介质安装（util-linux、iproute2、kmod、procps、systemd）"},
			strings.Join(missing, ", ")))
	}
	if len(optional) > 0 {
		out = append(out, c.finding("commands", Warning,
			text{"missing commands: %s", "缺少命令：%s"},
			text{"kubeadm warns without them; install them from the OS installation media if you can", "缺少时 kubeadm 会告警；如条件允许，请从系统安装介质安装"},
			strings.Join(optional, ", ")))
	}
	return out
}

func checkSELinux(c *checker, n Node) []Finding {
	if n.Facts.SELinux == "enforcing" {
		return []Finding{c.finding("selinux", Warning,
			text{"SELinux is enforcing", "SELinux 处于 enforcing 模式"},
			text{"the installer sets it to permissive (setenforce 0 and /etc/selinux/config)", "安装程序会将其改为 permissive（setenforce 0 并修改 /etc/selinux/config）"})}
	}
	return nil
}

func checkFirewalld(c *checker, n Node) []Finding {
	if n.Facts.Firewalld == "running" {
		return []Finding{c.finding("firewalld", Warning,
			text{"firewalld is running", "firewalld 正在运行"},
			text{"the installer opens the cluster's ports in firewalld, or stops it if cluster.yaml says so", "安装程序会在 firewalld 中放行集群端口，或按 cluster.yaml 的配置停止它"})}
	}
	return nil
}

// bytesIEC formats n as KiB, MiB or GiB.
func bytesIEC(n uint64) string { return progress.Bytes(int64(n)) }
