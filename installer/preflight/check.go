package preflight

import (
	"errors"
	"slices"

	"github.com/wutong-paas/wutong-offline/installer/remote"
)

type checker struct {
	in     Input
	limits *Limits
}

// Check runs every rule on every host. It reads only what Gather collected, so it is fast and repeatable.
func Check(in Input) *Report {
	c := &checker{in: in, limits: in.Limits}
	if c.limits == nil {
		c.limits = DefaultLimits()
	}
	r := &Report{}
	if in.Payload == nil {
		r.Notes = append(r.Notes, c.pick(text{
			"no bundle given: the arch payload and disk space were not checked (set spec.bundle or pass --bundle)",
			"未指定离线包：未检查架构与磁盘空间（请设置 spec.bundle 或使用 --bundle）"}))
	}
	for _, n := range in.Nodes {
		hr := HostReport{Name: n.Host.Name, Address: n.Host.Address, Findings: []Finding{}}
		if n.Facts == nil {
			hr.Findings = append(hr.Findings, c.unreachable(n.Err))
			r.Hosts = append(r.Hosts, hr)
			continue
		}
		hr.OS = n.Facts.OS.PrettyName
		if n.Facts.OS.ServicePack != "" {
			hr.OS += " " + n.Facts.OS.ServicePack
		}
		hr.Arch, hr.Kernel = n.Facts.Arch, n.Facts.Kernel
		for _, rl := range rules {
			hr.Findings = append(hr.Findings, rl.check(c, n)...)
		}
		// Errors first, then warnings, each in rule order.
		slices.SortStableFunc(hr.Findings, func(a, b Finding) int {
			if a.Severity == b.Severity {
				return 0
			}
			if a.Severity == Error {
				return -1
			}
			return 1
		})
		if n.Facts.CgroupVersion == 1 {
			r.CgroupV1 = append(r.CgroupV1, n.Host.Name)
		}
		r.Hosts = append(r.Hosts, hr)
	}
	return r
}

func (c *checker) pick(t text) string {
	if c.in.Lang == "zh-CN" {
		return t.zh
	}
	return t.en
}

// unreachable turns a Gather failure into a finding with the remedy for its kind.
func (c *checker) unreachable(err error) Finding {
	var (
		he *remote.HostKeyError
		ae *remote.AuthError
		de *remote.DialError
		se *remote.SudoError
	)
	msg := "<nil>"
	if err != nil {
		msg = err.Error()
	}
	fix := text{"see the message; fix it and run preflight again", "请根据提示修复后重新检查"}
	switch {
	case errors.As(err, &he) && he.Changed():
		fix = text{"the node's host key changed: if the server was reinstalled, remove its old line from the known_hosts file named above; if not, STOP: someone may be intercepting the connection",
			"该节点的主机密钥已变化：如果服务器重装过，请从上面列出的 known_hosts 文件中删除旧记录；否则请立即停止，连接可能被劫持"}
	case errors.As(err, &he):
		fix = text{"check the fingerprint with the server's administrator (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server), then run again with --accept-new-host-keys",
			"请与服务器管理员核对指纹（在服务器上执行 ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub），确认后加 --accept-new-host-keys 重新运行"}
	case errors.As(err, &ae):
		fix = text{"check the user, password or key for this host in cluster.yaml (and the env: variables it names)",
			"请检查 cluster.yaml 中该主机的用户、密码或密钥（以及其中 env: 引用的环境变量）"}
	case errors.As(err, &se):
		fix = text{"check sudoPassword for this host, and that the user may use sudo (usermod -aG wheel USER, or sudo on Debian/UOS)",
			"请检查该主机的 sudoPassword，并确认该用户有 sudo 权限（usermod -aG wheel 用户名，Debian/UOS 为 sudo 组）"}
	case errors.As(err, &de):
		fix = text{"check the address and port, that sshd runs on the node, and that no firewall blocks it (and the bastion, if any)",
			"请检查地址与端口、节点上 sshd 是否运行、是否被防火墙拦截（如有跳板机也请检查）"}
	}
	return Finding{Rule: "connect", Severity: Error, Message: msg, Remediation: c.pick(fix)}
}
