package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
)

// distribution logs through logrus's global standard logger. bridgeLogrus silences logrus's own output and forwards
// its entries (Info and above) to an slog logger instead: the one of the latest NewHandler call, since logrus is
// global to the process. Only known, harmless fields are forwarded (never headers or credentials), and an error
// response below 500 (unknown manifest, failed auth, read-only refusal) and the routineMessages are logged at Debug.
func bridgeLogrus(l *slog.Logger) {
	bridge.logger.Store(l)
	bridge.once.Do(func() {
		std := logrus.StandardLogger()
		std.SetOutput(io.Discard)
		std.SetFormatter(nopFormatter{})
		std.SetLevel(logrus.InfoLevel)
		std.AddHook(&bridge)
	})
}

var bridge logrusBridge

type logrusBridge struct {
	once   sync.Once
	logger atomic.Pointer[slog.Logger]
}

// forwardedFields are the logrus fields passed on, under these slog keys.
var forwardedFields = []struct{ from, to string }{
	{"err.code", "code"},
	{"err.message", "message"},
	{"err.detail", "detail"},
	{logrus.ErrorKey, "err"},
	{"http.request.method", "method"},
	{"http.request.uri", "path"},
	{"http.request.remoteaddr", "remote"},
	{"http.response.status", "status"},
	{"vars.name", "repo"},
	{"vars.reference", "ref"},
	{"vars.digest", "digest"},
	{"auth.user.name", "user"},
	{"username", "user"},
}

func (*logrusBridge) Levels() []logrus.Level { return logrus.AllLevels }

func (b *logrusBridge) Fire(e *logrus.Entry) error {
	l := b.logger.Load()
	if l == nil {
		return nil
	}
	level := slog.LevelInfo
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	case e.Level >= logrus.DebugLevel:
		level = slog.LevelDebug
	}
	if s, ok := e.Data["http.response.status"].(int); ok && s < 500 || routine(e.Message) {
		level = min(level, slog.LevelDebug)
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if !l.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]slog.Attr, 0, 8)
	for _, f := range forwardedFields {
		v, ok := e.Data[f.from]
		if !ok || v == nil || v == "" {
			continue
		}
		if f.from == "http.request.uri" {
			v = stripQuery(fmt.Sprint(v))
		}
		attrs = append(attrs, slog.Any(f.to, v))
	}
	l.LogAttrs(ctx, level, "registry: "+e.Message, attrs...)
	return nil
}

// routineMessages start distribution log lines that are routine on a busy registry: one per authorized request, the
// 401 challenge every client gets before it sends credentials (a wrong password is logged at Info on its own line),
// and a note about a cache we do not use.
var routineMessages = []string{
	"authorized request",
	"error authorizing context: basic authentication challenge",
	"redis not configured",
}

func routine(msg string) bool {
	for _, m := range routineMessages {
		if strings.HasPrefix(msg, m) {
			return true
		}
	}
	return false
}

// stripQuery drops the query of a request URI: upload URLs carry signed state that means nothing in a log.
func stripQuery(uri string) string {
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return uri
	}
	return u.Path
}

type nopFormatter struct{}

func (nopFormatter) Format(*logrus.Entry) ([]byte, error) { return nil, nil }
