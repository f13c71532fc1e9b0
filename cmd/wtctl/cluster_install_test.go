package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/installer/pipeline"
)

// TestInstallSummaryPlatform: the summary gives, in English and in Chinese, the platform's URL, and for HTTPS the
// cluster CA file to trust and a login command that trusts it; for plain HTTP it says so and names no CA.
func TestInstallSummaryPlatform(t *testing.T) {
	https := pipeline.PlatformAccess{URL: "https://192.0.2.11:30080", HTTPS: true, CAFile: "/w/pki/ca.crt",
		Login: "wtctl app login https://192.0.2.11:30080 --user admin --ca-cert /w/pki/ca.crt", PasswordCommand: "show-password"}
	plain := pipeline.PlatformAccess{URL: "http://192.0.2.11:30080",
		Login: "wtctl app login http://192.0.2.11:30080 --user admin", PasswordCommand: "show-password"}
	s := &pipeline.Summary{Version: "v1.37.2", Kubeconfig: "/w/kubeconfig", PlatformURL: "set"}
	for _, tc := range []struct {
		lang        string
		pa          *pipeline.PlatformAccess
		want, never []string
	}{
		{"en", &https, []string{"Wutong platform: https://192.0.2.11:30080\n", "trust this CA file", "\n  /w/pki/ca.crt\n",
			"Log in as admin:\n  wtctl app login https://192.0.2.11:30080 --user admin --ca-cert /w/pki/ca.crt\n",
			"The password of user admin:\n  show-password\n"}, []string{"plain HTTP"}},
		{"zh_CN.UTF-8", &https, []string{"梧桐平台：https://192.0.2.11:30080\n", "集群 CA", "\n  /w/pki/ca.crt\n",
			"以 admin 登录：\n  wtctl app login https://192.0.2.11:30080 --user admin --ca-cert /w/pki/ca.crt\n",
			"管理员 admin 的密码：\n  show-password\n"}, []string{"明文"}},
		{"en", &plain, []string{"Wutong platform: http://192.0.2.11:30080\n", "plain HTTP (spec.platform.insecureHTTP)",
			"Log in as admin:\n  wtctl app login http://192.0.2.11:30080 --user admin\n"}, []string{"ca.crt", "--ca-cert"}},
		{"zh_CN.UTF-8", &plain, []string{"梧桐平台：http://192.0.2.11:30080\n", "明文 HTTP", "以 admin 登录："}, []string{"ca.crt"}},
		{"en", nil, []string{"kubeconfig (0600): /w/kubeconfig"}, []string{"Wutong platform", "wtctl app login"}},
	} {
		t.Setenv("WTCTL_LANG", tc.lang)
		var out bytes.Buffer
		printInstallSummary(&out, s, tc.pa)
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: want %q in\n%s", tc.lang, w, out.String())
			}
		}
		for _, n := range tc.never {
			if strings.Contains(out.String(), n) {
				t.Errorf("%s: %q must not be in\n%s", tc.lang, n, out.String())
			}
		}
	}
}
