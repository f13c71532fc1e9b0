package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wutong-paas/wutong-offline/platform/api"
)

// installsPath is /api/v1/teams/TEAM/installs[/NAME[/...]], every segment escaped.
func installsPath(team string, more ...string) string {
	p := api.Prefix + "/teams/" + url.PathEscape(team) + "/installs"
	for _, m := range more {
		p += "/" + url.PathEscape(m)
	}
	return p
}

// Installs lists the installs of a team, or of every team one may read when team is "".
func (c *Client) Installs(ctx context.Context, team string) ([]api.Install, error) {
	path := api.Prefix + "/installs"
	if team != "" {
		path = installsPath(team)
	}
	var out []api.Install
	_, err := c.do(ctx, "GET", path, nil, nil, "", nil, &out)
	return out, err
}

// Install returns one install.
func (c *Client) Install(ctx context.Context, team, name string) (api.Install, error) {
	var out api.Install
	_, err := c.do(ctx, "GET", installsPath(team, name), nil, nil, "", nil, &out)
	return out, err
}

// postJSON sends in as JSON and decodes the answer into out.
func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	body, err := jsonBody(in)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, "POST", path, nil, body, api.MediaJSON, nil, out)
	return err
}

// CreateInstall installs an app version into a team. The revision runs in the server after the answer; follow it
// with WaitInstall.
func (c *Client) CreateInstall(ctx context.Context, team string, in api.NewInstall) (api.Change, error) {
	var out api.Change
	err := c.postJSON(ctx, installsPath(team), in, &out)
	return out, err
}

// Upgrade starts an upgrade (or downgrade) of an install. in.DryRun is ignored: use PlanUpgrade to preview.
func (c *Client) Upgrade(ctx context.Context, team, name string, in api.Upgrade) (api.Change, error) {
	in.DryRun = false
	var out api.Change
	err := c.postJSON(ctx, installsPath(team, name, "upgrade"), in, &out)
	return out, err
}

// PlanUpgrade previews an upgrade: the per-component changes and the API server's dry-run verdicts. Nothing
// changes.
func (c *Client) PlanUpgrade(ctx context.Context, team, name string, in api.Upgrade) (api.Plan, error) {
	in.DryRun = true
	var out api.Plan
	err := c.postJSON(ctx, installsPath(team, name, "upgrade"), in, &out)
	return out, err
}

// Rollback starts a rollback to an earlier revision (in.Revision 0: the last succeeded one before the deployed).
func (c *Client) Rollback(ctx context.Context, team, name string, in api.Rollback) (api.Change, error) {
	var out api.Change
	err := c.postJSON(ctx, installsPath(team, name, "rollback"), in, &out)
	return out, err
}

// Revisions lists an install's revisions, newest first.
func (c *Client) Revisions(ctx context.Context, team, name string) ([]api.Revision, error) {
	var out []api.Revision
	_, err := c.do(ctx, "GET", installsPath(team, name, "revisions"), nil, nil, "", nil, &out)
	return out, err
}

// Status returns the install as the cluster shows it now: components, pods and recent events.
func (c *Client) Status(ctx context.Context, team, name string) (api.InstallStatus, error) {
	var out api.InstallStatus
	_, err := c.do(ctx, "GET", installsPath(team, name, "status"), nil, nil, "", nil, &out)
	return out, err
}

// LogOptions choose the logs to stream.
type LogOptions struct {
	// Component whose pods' logs are streamed. Required.
	Component string
	// Pod narrows to one pod of the component.
	Pod string
	// Follow keeps streaming until ctx ends.
	Follow bool
	// Tail is how many of the last lines of each pod to start with; 0: the server's default (100).
	Tail int64
}

// Logs streams a component's logs into w. With Follow it streams until ctx ends, and then returns ctx's error.
func (c *Client) Logs(ctx context.Context, team, name string, opts LogOptions, w io.Writer) error {
	q := url.Values{}
	q.Set("component", opts.Component)
	if opts.Pod != "" {
		q.Set("pod", opts.Pod)
	}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Tail > 0 {
		q.Set("tail", strconv.FormatInt(opts.Tail, 10))
	}
	resp, err := c.do(ctx, "GET", installsPath(team, name, "logs"), q, nil, "", nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(flushWriter{w}, resp.Body); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("logs of %s: %w", name, err)
	}
	return ctx.Err()
}

// flushWriter passes each chunk of a stream on at once (io.Copy writes what each Read gives).
type flushWriter struct{ w io.Writer }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(interface{ Flush() error }); ok && err == nil {
		err = fl.Flush()
	}
	return n, err
}

// Uninstall removes an install. Its volumes stay (and are listed in the answer) unless deleteData is set, which
// destroys their data.
func (c *Client) Uninstall(ctx context.Context, team, name string, deleteData bool) (api.Uninstalled, error) {
	var q url.Values
	if deleteData {
		q = url.Values{"deleteData": {"true"}}
	}
	var out api.Uninstalled
	_, err := c.do(ctx, "DELETE", installsPath(team, name), q, nil, "", nil, &out)
	return out, err
}

// WaitInterval is how often WaitInstall asks for the status.
var WaitInterval = time.Second

// waitRetries is how many failed status requests in a row WaitInstall lets pass (a server restarting, a network
// hiccup) before it gives up.
const waitRetries = 5

// WaitInstall follows a change until its revision has finished: it polls the status until the install is no longer
// deploying and its newest revision is at least revision (an automatic rollback after a failure is a later
// revision, and is waited for too). progress, if set, sees every status. It returns the final status; ctx bounds
// the wait (the change goes on in the server when ctx ends).
func (c *Client) WaitInstall(ctx context.Context, team, name string, revision int, progress func(api.InstallStatus)) (api.InstallStatus, error) {
	var last api.InstallStatus
	failures := 0
	for {
		st, err := c.Status(ctx, team, name)
		switch {
		case err == nil:
			failures = 0
			last = st
			if progress != nil {
				progress(st)
			}
			if st.Install.State != api.StateDeploying && st.Install.Revision >= revision {
				return st, nil
			}
		case ctx.Err() != nil:
			return last, ctx.Err()
		case !transient(err) || failures >= waitRetries:
			return last, err
		default:
			failures++
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(WaitInterval):
		}
	}
}

// transient reports whether a failed request may work when tried again: no answer at all, or a gateway or server
// error other than "no cluster".
func transient(err error) bool {
	var p *api.Problem
	if !errors.As(err, &p) {
		return true
	}
	switch p.Status {
	case http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	case http.StatusServiceUnavailable:
		return p.Title != "No cluster"
	}
	return false
}

// IsConflict reports whether err is the server saying that something is in the way: another change of the install
// in progress, or objects that belong to someone else.
func IsConflict(err error) bool {
	var p *api.Problem
	return errors.As(err, &p) && p.Status == http.StatusConflict
}

// IsNotFound reports whether err is the server saying that there is no such thing.
func IsNotFound(err error) bool {
	var p *api.Problem
	return errors.As(err, &p) && p.Status == http.StatusNotFound
}
