package engine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
)

// HintError is an error that carries its own remediation, for phases that know better than Hint.
type HintError struct {
	Err    error
	EN, ZH string
}

// WithHint attaches a remediation in English and Chinese to err (nil stays nil).
func WithHint(err error, en, zh string) error {
	if err == nil {
		return nil
	}
	return &HintError{Err: err, EN: en, ZH: zh}
}

func (e *HintError) Error() string { return e.Err.Error() }
func (e *HintError) Unwrap() error { return e.Err }

// Hint is the remediation in lang.
func (e *HintError) Hint(lang i18n.Lang) string { return text{e.EN, e.ZH}.in(lang) }

type text struct{ en, zh string }

func (t text) in(lang i18n.Lang) string {
	if lang == i18n.ZH && t.zh != "" {
		return t.zh
	}
	return t.en
}

// Hint maps an error from a phase to a short remediation in lang: a HintError's own, or one for remote's typed
// errors. For a failed command it points at the host's log, WORKDIR/logs/HOST.log.
func Hint(err error, lang i18n.Lang) string { return hintFor(err, lang, "") }

// hintFor is Hint with the host log's real path, when known.
func hintFor(err error, lang i18n.Lang, logPath string) string {
	if err == nil {
		return ""
	}
	var (
		he *HintError
		hk *remote.HostKeyError
		ae *remote.AuthError
		se *remote.SudoError
		de *remote.DialError
		te *remote.TransferError
		ce *remote.CommandError
	)
	switch {
	case errors.As(err, &he):
		return he.Hint(lang)
	case errors.Is(err, context.Canceled):
		return text{
			"The install was interrupted. Run the same command again: finished steps are skipped and it continues where it stopped.",
			"安装被中断。请重新执行同一命令：已完成的步骤会被跳过，从中断处继续。",
		}.in(lang)
	case errors.As(err, &hk) && hk.Changed():
		return text{
			"The node's host key CHANGED: this may be a man in the middle. Ask the node's administrator; only if the node was reinstalled, remove its old key from known_hosts and run again.",
			"节点的主机密钥已变更，可能存在中间人攻击。请与节点管理员核实；仅在节点确实重装过时，才从 known_hosts 删除旧密钥后重试。",
		}.in(lang)
	case errors.As(err, &hk):
		return text{
			"The node's host key is not trusted yet. Check its fingerprint with the node's administrator and accept it, then run again.",
			"尚未信任该节点的主机密钥。请与节点管理员核对指纹并确认接受后重试。",
		}.in(lang)
	case errors.As(err, &ae):
		return text{
			"The node refused the login. Check the user, password or key file for this host in cluster.yaml, then run again.",
			"节点拒绝登录。请检查 cluster.yaml 中该主机的用户名、密码或私钥文件后重试。",
		}.in(lang)
	case errors.As(err, &se):
		return text{
			"sudo refused the user. Check sudoPassword in cluster.yaml, or allow the user to sudo on the node (sudoers), then run again.",
			"sudo 拒绝了该用户。请检查 cluster.yaml 中的 sudoPassword，或在节点的 sudoers 中授权该用户后重试。",
		}.in(lang)
	case errors.As(err, &de):
		return text{
			"The node cannot be reached. Check the network link, the address and port, and that sshd is running on it; then run again: finished steps are skipped.",
			"无法连接节点。请检查网络连通性、地址和端口，以及节点上的 sshd 是否在运行；然后重试，已完成的步骤会被跳过。",
		}.in(lang)
	case errors.As(err, &te) && errors.Is(err, remote.ErrDiskFull), diskFull(err):
		return text{
			"The node's disk is full. Free space on it (/opt/wutong and /var/lib need room) and run again; the upload resumes.",
			"节点磁盘空间不足。请在节点上清理空间（/opt/wutong 和 /var/lib 需要足够空间）后重试，上传会断点续传。",
		}.in(lang)
	case errors.As(err, &te) && errors.Is(err, remote.ErrPermission):
		return text{
			"The node refused to write the file. Check that the login user may use sudo and that the path is not read-only, then run again.",
			"节点拒绝写入文件。请确认登录用户可以使用 sudo，且目标路径不是只读的，然后重试。",
		}.in(lang)
	case errors.As(err, &te):
		return text{
			"A file transfer failed. Check the network link to the node and run again; the upload resumes.",
			"文件传输失败。请检查到节点的网络后重试，上传会断点续传。",
		}.in(lang)
	case errors.As(err, &ce) && ce.ExitCode < 0:
		return text{
			"The command did not finish: the link dropped or it timed out. Check the network to the node and run again; finished steps are skipped.",
			"命令未能执行完成：连接中断或超时。请检查到节点的网络后重试，已完成的步骤会被跳过。",
		}.in(lang)
	case errors.As(err, &ce):
		p := logPath
		if p == "" {
			p = filepath.Join("<workdir>", "logs", ce.Host+".log")
		}
		return text{
			"A command failed on the node. Its output is in " + p + "; fix the cause and run again.",
			"节点上的命令执行失败，输出见 " + p + "；排除原因后重试。",
		}.in(lang)
	}
	if logPath != "" {
		return text{"See " + logPath + ", fix the cause and run again.", "详见 " + logPath + "，排除原因后重试。"}.in(lang)
	}
	return i18n.T(lang, i18n.ErrGeneric)
}

// diskFull recognises a command that ran out of space on the node.
func diskFull(err error) bool {
	var ce *remote.CommandError
	return errors.As(err, &ce) && strings.Contains(ce.Stderr, "No space left on device")
}
