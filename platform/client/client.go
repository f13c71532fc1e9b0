// Package client is the Go client of the platform's /api/v1, used by `wtctl app`: log in, import packages with
// progress, list apps and versions, export a version as a package, and install, upgrade, roll back, watch and
// uninstall apps. Errors from the server come back as
// *api.Problem, so callers can show the server's own explanation.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wutong-paas/wutong-offline/platform/api"
)

// Options configure a Client.
type Options struct {
	// Server is the platform's base URL, e.g. https://10.99.0.10:30080. Required.
	Server string
	// Token is a session or API token. Empty for Login and Health.
	Token string
	// CACert is a PEM file of CAs to trust for an https Server, in addition to the system roots.
	CACert string
	// HTTPClient replaces the default client (no overall timeout, since imports and exports may take long).
	HTTPClient *http.Client
}

// Client talks to one platform server.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New checks opts and makes a Client.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(opts.Server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server address %q: give a URL such as https://10.99.0.10:30080", opts.Server)
	}
	hc := opts.HTTPClient
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if opts.CACert != "" {
			pem, err := os.ReadFile(opts.CACert)
			if err != nil {
				return nil, fmt.Errorf("read CA certificate: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("read CA certificate %s: no PEM certificate in it", opts.CACert)
			}
			t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		hc = &http.Client{Transport: t}
	}
	return &Client{base: u, token: opts.Token, http: hc}, nil
}

// Token is the token in use (after Login, the session's).
func (c *Client) Token() string { return c.token }

// Server is the base URL.
func (c *Client) Server() string { return c.base.String() }

// do sends a request and decodes a JSON answer into out (unless nil). Non-2xx answers become *api.Problem.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string, hdr http.Header, out any) (*http.Response, error) {
	u := *c.base
	// path comes with its segments escaped (url.PathEscape): keep them so, or a "/" in a name would split it.
	raw := u.EscapedPath() + path
	p, err := url.PathUnescape(raw)
	if err != nil {
		return nil, fmt.Errorf("make request: path %s: %w", raw, err)
	}
	u.Path, u.RawPath = p, raw
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("make request: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", api.MediaJSON+", "+api.MediaProblem)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if r, ok := body.(interface{ Len() int }); ok && body != nil {
		req.ContentLength = int64(r.Len())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u.Redacted(), err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readProblem(resp)
	}
	if out == nil {
		return resp, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return resp, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return nil, fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	return resp, nil
}

func readProblem(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	p := &api.Problem{}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); (mt == api.MediaProblem || mt == api.MediaJSON) && json.Unmarshal(data, p) == nil && p.Status != 0 {
		return p
	}
	text := strings.TrimSpace(string(data))
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	return &api.Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Detail: text}
}

func jsonBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

// Login logs in and returns the session; the client uses its token from then on.
func (c *Client) Login(ctx context.Context, user, password string) (*api.Session, error) {
	body, err := jsonBody(api.Login{Username: user, Password: password})
	if err != nil {
		return nil, err
	}
	var s api.Session
	if _, err := c.do(ctx, "POST", api.Prefix+"/login", nil, body, api.MediaJSON, nil, &s); err != nil {
		return nil, err
	}
	c.token = s.Token
	return &s, nil
}

// Logout revokes the token in use.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.do(ctx, "POST", api.Prefix+"/logout", nil, nil, "", nil, new(struct{}))
	return err
}

// Me returns the logged-in user.
func (c *Client) Me(ctx context.Context) (*api.User, error) {
	var u api.User
	_, err := c.do(ctx, "GET", api.Prefix+"/me", nil, nil, "", nil, &u)
	return &u, err
}

// Health returns the server's health.
func (c *Client) Health(ctx context.Context) (*api.Health, error) {
	var h api.Health
	_, err := c.do(ctx, "GET", "/healthz", nil, nil, "", nil, &h)
	return &h, err
}

// Apps lists the apps one may see.
func (c *Client) Apps(ctx context.Context) ([]api.App, error) {
	var out []api.App
	_, err := c.do(ctx, "GET", api.Prefix+"/apps", nil, nil, "", nil, &out)
	return out, err
}

// Versions lists an app's versions, highest first.
func (c *Client) Versions(ctx context.Context, app string) ([]api.Version, error) {
	var out []api.Version
	_, err := c.do(ctx, "GET", api.Prefix+"/apps/"+url.PathEscape(app)+"/versions", nil, nil, "", nil, &out)
	return out, err
}

// Version returns one version with its app model.
func (c *Client) Version(ctx context.Context, app, version string) (*api.Version, error) {
	var out api.Version
	_, err := c.do(ctx, "GET", api.Prefix+"/apps/"+url.PathEscape(app)+"/versions/"+url.PathEscape(version), nil, nil, "", nil, &out)
	return &out, err
}

// Imports lists imports, newest first.
func (c *Client) Imports(ctx context.Context) ([]api.Import, error) {
	var out []api.Import
	_, err := c.do(ctx, "GET", api.Prefix+"/imports", nil, nil, "", nil, &out)
	return out, err
}

// Import returns one import.
func (c *Client) Import(ctx context.Context, id string) (*api.Import, error) {
	var out api.Import
	_, err := c.do(ctx, "GET", api.Prefix+"/imports/"+url.PathEscape(id), nil, nil, "", nil, &out)
	return &out, err
}

// ImportOptions say where an import goes and how to show it.
type ImportOptions struct {
	// Team to import into; empty when the user may import into exactly one team.
	Team string
	// Progress, if set, is called with the bytes just sent.
	Progress func(n int64)
}

// StartImport sends the package at path and returns the import as the server accepted it: already done (Unchanged)
// or pushing. Use WaitImport to follow it.
func (c *Client) StartImport(ctx context.Context, path string, opts ImportOptions) (*api.Import, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open package: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open package: %w", err)
	}
	var body io.Reader = f
	if opts.Progress != nil {
		body = &progressReader{r: f, fn: opts.Progress}
	}
	q := url.Values{}
	if opts.Team != "" {
		q.Set("team", opts.Team)
	}
	u := *c.base
	u.Path += api.Prefix + "/imports"
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, "POST", u.String(), io.NopCloser(body))
	if err != nil {
		return nil, err
	}
	req.ContentLength = fi.Size()
	req.Header.Set("Content-Type", api.MediaPackage)
	req.Header.Set(api.HeaderFilename, fi.Name())
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, readProblem(resp)
	}
	var out api.Import
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("read import answer: %w", err)
	}
	return &out, nil
}

// WaitImport polls an import every interval until it is done or failed. A failed import is an *ImportError.
func (c *Client) WaitImport(ctx context.Context, id string, interval time.Duration, seen func(*api.Import)) (*api.Import, error) {
	for {
		im, err := c.Import(ctx, id)
		if err != nil {
			return nil, err
		}
		if seen != nil {
			seen(im)
		}
		if im.State == api.ImportFailed {
			return im, &ImportError{Import: *im}
		}
		if im.Terminal() {
			return im, nil
		}
		select {
		case <-ctx.Done():
			return im, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// ImportError is an import the server gave up on.
type ImportError struct{ Import api.Import }

func (e *ImportError) Error() string {
	return fmt.Sprintf("import %s failed: %s", e.Import.ID, e.Import.Error)
}

// Export downloads a version as a package into w, returning the bytes written. A cut transfer is an error.
func (c *Client) Export(ctx context.Context, app, version string, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, "GET", api.Prefix+"/apps/"+url.PathEscape(app)+"/versions/"+url.PathEscape(version)+"/package", nil, nil, "", nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("download %s %s: %w", app, version, err)
	}
	return n, nil
}

type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}

// IsUnauthorized reports whether err is the server refusing the token (log in again).
func IsUnauthorized(err error) bool {
	var p *api.Problem
	return errors.As(err, &p) && p.Status == http.StatusUnauthorized
}
