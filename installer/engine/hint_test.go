package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
)

func TestHint(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("step x: %w", err) }
	for _, tc := range []struct {
		name   string
		err    error
		en, zh string // substrings
	}{
		{"own hint", wrap(WithHint(errors.New("no CA"), "Generate the CA first.", "请先生成 CA。")), "Generate the CA first.", "请先生成 CA。"},
		{"dial", wrap(&remote.DialError{Host: "h", Address: "10.0.0.1:22", Err: errors.New("timeout")}), "sshd", "sshd"},
		{"auth", &remote.AuthError{Host: "h", User: "root", Err: errors.New("no")}, "cluster.yaml", "cluster.yaml"},
		{"host key unknown", &remote.HostKeyError{Host: "h", Got: "SHA256:x"}, "not trusted", "尚未信任"},
		{"host key changed", &remote.HostKeyError{Host: "h", Got: "SHA256:x", Known: []string{"SHA256:y"}}, "CHANGED", "已变更"},
		{"sudo", &remote.SudoError{Host: "h", User: "u"}, "sudoPassword", "sudoers"},
		{"disk full", wrap(&remote.TransferError{Host: "h", Path: "/opt/x", Op: "write", Err: remote.ErrDiskFull}), "disk is full", "磁盘空间不足"},
		{"disk full in a command", &remote.CommandError{Host: "h", Cmd: "cp", ExitCode: 1, Stderr: "cp: No space left on device"}, "disk is full", "磁盘空间不足"},
		{"permission", &remote.TransferError{Host: "h", Path: "/opt/x", Op: "write", Err: remote.ErrPermission}, "refused to write", "拒绝写入"},
		{"transfer", &remote.TransferError{Host: "h", Path: "/opt/x", Op: "write", Err: errors.New("EOF")}, "resumes", "断点续传"},
		{"command", wrap(&remote.CommandError{Host: "lab2", Cmd: "x", ExitCode: 1}), "logs/lab2.log", "logs/lab2.log"},
		{"link lost", &remote.CommandError{Host: "lab2", Cmd: "x", ExitCode: -1, Err: errors.New("EOF")}, "link dropped", "连接中断"},
		{"cancelled", wrap(context.Canceled), "interrupted", "中断"},
		{"other", errors.New("boom"), "failed", "失败"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Hint(tc.err, i18n.EN); !strings.Contains(got, tc.en) {
				t.Errorf("en: %q, want %q in it", got, tc.en)
			}
			if got := Hint(tc.err, i18n.ZH); !strings.Contains(got, tc.zh) {
				t.Errorf("zh: %q, want %q in it", got, tc.zh)
			}
		})
	}
	if Hint(nil, i18n.EN) != "" || WithHint(nil, "a", "b") != nil {
		t.Error("nil error got a hint")
	}
}
