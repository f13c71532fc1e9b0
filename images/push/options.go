// Package push copies the images of an OCI image layout, or of a signed bundle's layout, into a registry: blobs
// concurrently, each checked first so that a re-run sends only what is missing, blobs shared between repositories
// mounted instead of sent again, every request retried with backoff, and multi-arch indexes written byte for byte
// so that their digests stay the same.
package push

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wutong-paas/wutong-offline/images"
)

// Options say where and how to push.
type Options struct {
	// Target is the registry's HOST[:PORT], e.g. harbor.example.com or 127.0.0.1:5000. Required.
	Target string
	// Username and Password are basic-auth credentials. When Username is empty the docker config keychain is
	// used, and anonymous access when it has nothing for Target. The password is never logged.
	Username, Password string
	// CACert is a PEM file of CA certificates to trust for Target, in addition to the system roots.
	CACert string
	// InsecureHTTP speaks plain HTTP to the registry. Without it every request is HTTPS, whatever the address
	// looks like (go-containerregistry would otherwise guess HTTP for private and loopback addresses).
	InsecureHTTP bool
	// Concurrency is how many blobs are uploaded at once. Default 4.
	Concurrency int
	// Retries is how many times a failed request (network error, 408, 429, 5xx) is retried, with exponential
	// backoff starting at RetryDelay. Default 5; negative means no retries.
	Retries int
	// RetryDelay is the first backoff; it doubles on each retry, up to 30s. Default 1s.
	RetryDelay time.Duration
	// MapRef maps an image's name in the layout to its name in Target. Default: images.LocalRef(name, Target).
	MapRef func(name string) (string, error)
	// Planned, if set, is called once before any upload with the number of bytes Progress will add up to.
	Planned func(total int64)
	// Progress, if set, is called with blob bytes just done: bytes sent, or the size of a blob that was already
	// there or was mounted. Calls are serialized.
	Progress func(n int64)
	// Untagged writes each image by digest only: its tag is left for Tag, once the caller has decided the push
	// counts (the platform tags an app's images only after recording the version, so that a push that loses a race
	// for an app key moves no tag). PushedImage.Target still names the tag.
	Untagged bool
	// TempDir is where FromBundle unpacks the bundle's OCI layout (removed at the end). Default os.TempDir().
	TempDir string
}

// Result is what a push did.
type Result struct {
	Images        []PushedImage `json:"images"`
	BlobsUploaded int           `json:"blobsUploaded"` // blobs sent
	BlobsSkipped  int           `json:"blobsSkipped"`  // blobs the registry already had
	BlobsMounted  int           `json:"blobsMounted"`  // blobs mounted from another repository of the registry
	BytesUploaded int64         `json:"bytesUploaded"` // blob bytes sent, retries included
}

// PushedImage is one image written to the registry.
type PushedImage struct {
	Name   string `json:"name"`   // its name in the layout, e.g. registry.k8s.io/pause:3.10
	Target string `json:"target"` // its name in the registry
	Digest string `json:"digest"` // digest of its index (or manifest), the same in both places
}

// AuthError is a registry refusing the credentials.
type AuthError struct {
	Target   string
	Username string // empty: anonymous or docker config
	Err      error
}

func (e *AuthError) Error() string {
	user := e.Username
	if user == "" {
		user = "(anonymous or docker config)"
	}
	return fmt.Sprintf("authentication failed for %s as user %s: check --username/--password-stdin", e.Target, user)
}

func (e *AuthError) Unwrap() error { return e.Err }

func (o Options) withDefaults() (Options, error) {
	if o.Target == "" {
		return o, errors.New("no target registry given")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Retries == 0 {
		o.Retries = 5
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.MapRef == nil {
		target := o.Target
		o.MapRef = func(name string) (string, error) { return images.LocalRef(name, target) }
	}
	return o, nil
}

// remoteOptions are the go-containerregistry options for o, with rt as the transport.
func (o Options) remoteOptions(rt http.RoundTripper) []remote.Option {
	auth := remote.WithAuthFromKeychain(authn.DefaultKeychain)
	if o.Username != "" {
		auth = remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: o.Username, Password: o.Password}))
	}
	return []remote.Option{
		auth,
		remote.WithTransport(rt),
		remote.WithJobs(o.Concurrency),
		remote.WithUserAgent("wtctl"),
		remote.WithRetryBackoff(remote.Backoff{Duration: o.RetryDelay, Factor: 2, Jitter: 0.1, Steps: o.Retries + 1, Cap: 30 * time.Second}),
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
	}
}

// Remote returns go-containerregistry options that reach Target the way a push does: with the credentials and the
// CA, and over HTTPS unless InsecureHTTP is set (plain-HTTP requests are rewritten to HTTPS). Code that reads pushed
// images back, such as an export, uses them.
func (o Options) Remote() ([]remote.Option, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	base, err := o.baseTransport()
	if err != nil {
		return nil, err
	}
	return o.remoteOptions(&countingTransport{inner: base, https: !o.InsecureHTTP}), nil
}

// baseTransport is the HTTP transport trusting the system roots plus CACert.
func (o Options) baseTransport() (*http.Transport, error) {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	if o.CACert == "" {
		return t, nil
	}
	pemBytes, err := os.ReadFile(o.CACert)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("read CA certificate %s: no PEM certificate in it", o.CACert)
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}
