// Package logctx carries a *slog.Logger in a context.Context, so that libraries log where the caller wants without
// storing loggers or contexts.
package logctx

import (
	"context"
	"io"
	"log/slog"
)

type key struct{}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// With returns a context carrying l.
func With(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, key{}, l)
}

// From returns the logger in ctx, or one that discards everything.
func From(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(key{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return discard
}
