package pipeline

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wutong-paas/wutong-offline/internal/atomicfile"
	"github.com/wutong-paas/wutong-offline/internal/pki"
)

// The cluster's PKI in the workdir: the CA that every node trusts, and the server certificates it signs.
const (
	// PKIDir is the workdir's directory (0700) of the cluster CA and the server certificates.
	PKIDir = "pki"
	// CAFile is the cluster CA's certificate in PKIDir: what a person's browser or wtctl trusts.
	CAFile = "ca.crt"
	// certRenewBefore: a server certificate that expires sooner than this is issued again.
	certRenewBefore = 30 * 24 * time.Hour
)

// clusterCA loads the cluster CA from WORKDIR/pki (ca.crt, ca.key 0600), making it the first time.
func (in *Install) clusterCA(workdir string) (*pki.CA, error) {
	if workdir == "" {
		return nil, errors.New("a workdir is needed to keep the cluster CA")
	}
	dir := filepath.Join(workdir, PKIDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caCrt, caKey := filepath.Join(dir, CAFile), filepath.Join(dir, "ca.key")
	ca, err := pki.LoadCA(caCrt, caKey)
	if errors.Is(err, fs.ErrNotExist) {
		if ca, err = pki.NewCA("wutong-offline cluster CA ("+in.Cluster.Metadata.Name+")", 0); err == nil {
			err = ca.WriteFiles(caCrt, caKey)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	return ca, nil
}

// serverCert returns the server certificate NAME.crt and its key NAME.key in dir, issued by ca for hosts. It
// issues them again (and only then) when a file is missing or damaged, when hosts differ from the list recorded
// in NAME.hosts, when ca did not sign the certificate, or when it expires within certRenewBefore; so a re-run
// gets the same certificate. The three files are 0600, each written atomically, the hosts last.
func serverCert(ca *pki.CA, dir, name string, hosts []string) (certPEM, keyPEM []byte, err error) {
	crt, key, list := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), filepath.Join(dir, name+".hosts")
	want := strings.Join(hosts, "\n")
	certPEM, err1 := os.ReadFile(crt)
	keyPEM, err2 := os.ReadFile(key)
	had, err3 := os.ReadFile(list)
	if err1 == nil && err2 == nil && err3 == nil && string(had) == want && certStillGood(ca, certPEM, keyPEM, time.Now()) {
		return certPEM, keyPEM, nil
	}
	if certPEM, keyPEM, err = ca.IssueServer(hosts, 0); err != nil {
		return nil, nil, fmt.Errorf("%s certificate: %w", name, err)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{key, keyPEM}, {crt, certPEM}, {list, []byte(want)}} {
		if err := atomicfile.Write(f.path, f.data, 0o600); err != nil {
			return nil, nil, fmt.Errorf("%s certificate: %w", name, err)
		}
	}
	return certPEM, keyPEM, nil
}

// certStillGood reports whether certPEM and keyPEM form a pair, ca signed the certificate, and it is valid from now
// until certRenewBefore from now.
func certStillGood(ca *pki.CA, certPEM, keyPEM []byte, now time.Time) bool {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return false
	}
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return false
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil || c.CheckSignatureFrom(ca.Cert) != nil {
		return false
	}
	return !now.Before(c.NotBefore) && now.Add(certRenewBefore).Before(c.NotAfter)
}

// addHosts appends the non-empty hosts that are not in list yet.
func addHosts(list []string, hosts ...string) []string {
	for _, h := range hosts {
		if h != "" && !slices.Contains(list, h) {
			list = append(list, h)
		}
	}
	return list
}
