// Package i18n picks the user's language (zh-CN or en) from the environment and holds the short, translated
// messages that commands show around technical details, which stay as they are.
package i18n

import (
	"os"
	"strings"
)

// Lang is a supported language.
type Lang string

// Supported languages.
const (
	EN Lang = "en"
	ZH Lang = "zh-CN"
)

// FromEnv returns the language chosen by WTCTL_LANG, LC_ALL, LC_MESSAGES or LANG, in that order: zh-CN for any
// Chinese locale, else en.
func FromEnv() Lang {
	for _, k := range []string{"WTCTL_LANG", "LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := os.Getenv(k); v != "" {
			return Parse(v)
		}
	}
	return EN
}

// Parse maps a locale name such as zh_CN.UTF-8, zh-CN or en_US to a Lang.
func Parse(s string) Lang {
	if strings.HasPrefix(strings.ToLower(s), "zh") {
		return ZH
	}
	return EN
}

// Message IDs.
const (
	ErrGeneric   = "err.generic"
	ErrUsage     = "err.usage"
	ErrIntegrity = "err.integrity"
	ErrTrust     = "err.trust"
	ErrDiskFull  = "err.diskfull"
	ErrAuth      = "err.auth"
	ErrPreflight = "err.preflight"
	WarnUnsigned = "warn.insecure"
)

var catalog = map[string]map[Lang]string{
	ErrGeneric: {
		EN: "The command failed; the line above says why.",
		ZH: "命令执行失败，原因见上一行。",
	},
	ErrUsage: {
		EN: "The command line, bundle.yaml or cluster.yaml is wrong; fix the named flag, argument or field and run it again.",
		ZH: "命令参数、bundle.yaml 或 cluster.yaml 有误：请按提示修改对应的参数或字段后重试。",
	},
	ErrIntegrity: {
		EN: "The bundle is damaged, incomplete or unsafe. Nothing was installed or extracted. Copy it (or the named part) again from the source.",
		ZH: "离线包已损坏、不完整或含不安全条目，未安装或解压任何内容。请从源介质重新拷贝离线包（或提示中的分卷）。",
	},
	ErrTrust: {
		EN: "The bundle's signature is missing or not from a trusted key. Get the release public key and pass --key, or put it in /etc/wutong/trusted-keys/.",
		ZH: "离线包没有签名，或签名者不受信任。请向发布方索取公钥，用 --key 指定，或放入 /etc/wutong/trusted-keys/。",
	},
	ErrDiskFull: {
		EN: "Not enough disk space. Nothing half-written was kept. Free some space or choose another directory.",
		ZH: "磁盘空间不足，未保留任何写了一半的文件。请清理空间或换一个目录。",
	},
	ErrAuth: {
		EN: "The registry refused the credentials. Check the user name and password (--username, --password-stdin) and run it again; nothing was changed.",
		ZH: "镜像仓库拒绝了登录凭据。请检查用户名和密码（--username、--password-stdin）后重试；未做任何更改。",
	},
	ErrPreflight: {
		EN: "Some hosts are not ready. Nothing was installed. Fix each ERROR above as its arrow line says, then run preflight again; warnings alone do not stop the install.",
		ZH: "部分主机尚不满足安装条件，未安装任何内容。请按每条 ERROR 下箭头行的提示修复后重新检查；仅有警告不会阻止安装。",
	},
	WarnUnsigned: {
		EN: "WARNING: --insecure-skip-verify: the signature is NOT checked. Anyone could have built or altered this bundle.",
		ZH: "警告：使用了 --insecure-skip-verify，签名未经校验，任何人都可能构建或篡改过此离线包。",
	},
}

// T returns message id in lang, falling back to English.
func T(lang Lang, id string) string {
	m, ok := catalog[id]
	if !ok {
		return id
	}
	if s, ok := m[lang]; ok {
		return s
	}
	return m[EN]
}
