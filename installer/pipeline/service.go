package pipeline

import (
	"context"
	"time"

	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/remote"
)

// runService restarts the systemd unit (what names it for people) when its binaries or configuration changed, and
// otherwise only makes sure it is running, so that a run that changed nothing restarts nothing.
func runService(ctx context.Context, n *engine.Node, unit, what string, changed bool) error {
	if changed {
		_, err := n.Exec(ctx, "start "+what+" with its new binaries or configuration", remote.Cmd{Sudo: true,
			Line: "systemctl enable " + unit + " && systemctl restart " + unit})
		return err
	}
	if _, err := n.Query(ctx, remote.Cmd{Line: "systemctl is-active --quiet " + unit}); err == nil {
		return nil
	}
	_, err := n.Exec(ctx, "start "+what+" (it was not running)", remote.Cmd{Sudo: true, Line: "systemctl enable --now " + unit})
	return err
}

// waitFor gives a service that just (re)started up to 10 s: check runs every half second until it passes. It returns
// check's last error.
func waitFor(ctx context.Context, check func(context.Context) error) error {
	var err error
	for range 20 {
		if err = check(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return err
}
