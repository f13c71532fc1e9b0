package i18n

import "testing"

func TestParseAndFromEnv(t *testing.T) {
	for in, want := range map[string]Lang{"zh_CN.UTF-8": ZH, "zh-CN": ZH, "ZH_TW": ZH, "en_US.UTF-8": EN, "C": EN, "C.UTF-8": EN} {
		if got := Parse(in); got != want {
			t.Errorf("Parse(%q) = %s, want %s", in, got, want)
		}
	}
	t.Setenv("WTCTL_LANG", "")
	t.Setenv("LC_ALL", "")
	t.Setenv("LC_MESSAGES", "")
	t.Setenv("LANG", "zh_CN.UTF-8")
	if FromEnv() != ZH {
		t.Fatal("LANG=zh_CN.UTF-8 should select zh-CN")
	}
	t.Setenv("WTCTL_LANG", "en")
	if FromEnv() != EN {
		t.Fatal("WTCTL_LANG overrides LANG")
	}
}

func TestEveryMessageHasBothLanguages(t *testing.T) {
	for id, m := range catalog {
		if m[EN] == "" || m[ZH] == "" {
			t.Errorf("message %s lacks a translation: %v", id, m)
		}
		if T(ZH, id) == T(EN, id) {
			t.Errorf("message %s is not translated", id)
		}
	}
	if T(ZH, "no.such.id") != "no.such.id" {
		t.Error("an unknown id should come back as itself")
	}
}
