package pipeline

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/internal/pki"
)

func parseCertPEM(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatalf("no PEM block in %q", certPEM)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifyFor checks that cert chains to the CA in workdir for the server name host.
func verifyFor(t *testing.T, workdir string, cert *x509.Certificate, host string) error {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(workdir, PKIDir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate in ca.crt")
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

// TestPlatformCertNames: the certificate names every node (a node port answers on each) and the Service, and a
// client trusting only the cluster CA accepts it under each of those names, and no other.
func TestPlatformCertNames(t *testing.T) {
	in := platformInstall("ghcr.io/wutong-paas/wutong:v1")
	in.Cluster.Spec.Hosts = append(in.Cluster.Spec.Hosts,
		cluster.Host{Name: "w2", Address: "w2.example.com", InternalAddress: "10.99.60.13", Roles: []cluster.Role{cluster.RoleWorker}},
		cluster.Host{Name: "w3", Address: "fd00::14", InternalAddress: "fd00::14", Roles: []cluster.Role{cluster.RoleWorker}})
	in.Cluster.Spec.Kubernetes.DNSDomain = "prod.local"
	work := t.TempDir()
	certPEM, keyPEM, err := in.platformCert(work)
	if err != nil {
		t.Fatal(err)
	}
	if len(keyPEM) == 0 {
		t.Fatal("no key")
	}
	cert := parseCertPEM(t, certPEM)
	var sans []string
	for _, ip := range cert.IPAddresses {
		sans = append(sans, ip.String())
	}
	sans = append(sans, cert.DNSNames...)
	want := []string{"192.0.2.11", "10.99.60.11", "cp1", "192.0.2.12", "10.99.60.12", "w1", "w2.example.com", "10.99.60.13", "w2",
		"fd00::14", "w3", "wutong", "wutong.wutong-system", "wutong.wutong-system.svc", "wutong.wutong-system.svc.prod.local"}
	for _, h := range want {
		if !slices.Contains(sans, h) {
			t.Errorf("the certificate does not name %s; it names %v", h, sans)
		}
		if err := verifyFor(t, work, cert, h); err != nil {
			t.Errorf("verify for %s: %v", h, err)
		}
	}
	if len(sans) != len(want) {
		t.Errorf("names %v, want exactly %v", sans, want)
	}
	for _, h := range []string{"192.0.2.99", "evil.example.com", "wutong.wutong-system.svc.cluster.local"} {
		if err := verifyFor(t, work, cert, h); err == nil {
			t.Errorf("the certificate verifies for %s, which it must not name", h)
		}
	}
	for _, f := range []string{"platform.crt", "platform.key", "platform.hosts", "ca.key"} {
		st, err := os.Stat(filepath.Join(work, PKIDir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v (want mode 0600)", f, st, err)
		}
	}
	if st, err := os.Stat(filepath.Join(work, PKIDir)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("pki dir: %v, %v (want mode 0700)", st, err)
	}
	// Without a dnsDomain (a spec that was not defaulted), the Kubernetes default.
	in.Cluster.Spec.Kubernetes.DNSDomain = ""
	if hs := in.platformHosts(); !slices.Contains(hs, "wutong.wutong-system.svc.cluster.local") {
		t.Errorf("hosts %v lack the cluster.local service name", hs)
	}
}

// TestPlatformCertReuse: a re-run keeps the certificate; a changed host list, a certificate close to expiry, a
// damaged file or a new CA each give a new one.
func TestPlatformCertReuse(t *testing.T) {
	in := platformInstall("ghcr.io/wutong-paas/wutong:v1")
	work := t.TempDir()
	dir := filepath.Join(work, PKIDir)
	cert1, key1, err := in.platformCert(work)
	if err != nil {
		t.Fatal(err)
	}
	cert2, key2, err := in.platformCert(work)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert1, cert2) || !bytes.Equal(key1, key2) {
		t.Fatal("a second call with the same hosts issued a new certificate")
	}

	// A node is added: the certificate is issued again and names it.
	in.Cluster.Spec.Hosts = append(in.Cluster.Spec.Hosts, cluster.Host{Name: "w9", Address: "192.0.2.19", InternalAddress: "10.99.60.19", Roles: []cluster.Role{cluster.RoleWorker}})
	cert3, key3, err := in.platformCert(work)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cert3, cert1) || bytes.Equal(key3, key1) {
		t.Fatal("a changed host list kept the old certificate")
	}
	if err := verifyFor(t, work, parseCertPEM(t, cert3), "192.0.2.19"); err != nil {
		t.Errorf("the new certificate does not cover the new node: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "platform.crt")); !bytes.Equal(got, cert3) {
		t.Error("platform.crt does not hold the new certificate")
	}
	if cert4, _, _ := in.platformCert(work); !bytes.Equal(cert4, cert3) {
		t.Error("the re-issued certificate is not reused on the next call")
	}

	// A certificate that expires within certRenewBefore is replaced.
	ca, err := in.clusterCA(work)
	if err != nil {
		t.Fatal(err)
	}
	short, shortKey, err := ca.IssueServer(in.platformHosts(), 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteKeyPair(filepath.Join(dir, "platform.crt"), filepath.Join(dir, "platform.key"), short, shortKey); err != nil {
		t.Fatal(err)
	}
	cert5, _, err := in.platformCert(work)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cert5, short) || time.Until(parseCertPEM(t, cert5).NotAfter) < certRenewBefore {
		t.Error("a certificate about to expire was kept")
	}

	// A damaged key file is replaced, not served.
	os.WriteFile(filepath.Join(dir, "platform.key"), []byte("garbage"), 0o600)
	cert6, key6, err := in.platformCert(work)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cert6, cert5) || bytes.Equal(key6, []byte("garbage")) {
		t.Error("a damaged key was kept")
	}

	// A new cluster CA: the old certificate no longer chains to it, so a new one is issued.
	os.Remove(filepath.Join(dir, "ca.crt"))
	os.Remove(filepath.Join(dir, "ca.key"))
	cert7, _, err := in.platformCert(work)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cert7, cert6) {
		t.Fatal("a certificate of the old CA was kept")
	}
	if err := verifyFor(t, work, parseCertPEM(t, cert7), "192.0.2.11"); err != nil {
		t.Errorf("the new certificate does not chain to the new CA: %v", err)
	}
}

// TestRegistryCertShared: the registry's certificate goes through the same helper: kept across calls, for the
// registry's names, signed by the same CA as the platform's, and in files of its own.
func TestRegistryCertShared(t *testing.T) {
	in := platformInstall("ghcr.io/wutong-paas/wutong:v1")
	work := t.TempDir()
	cr1, err := in.credentials(work)
	if err != nil {
		t.Fatal(err)
	}
	cr2, err := in.credentials(work)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cr1.certPEM, cr2.certPEM) || !bytes.Equal(cr1.keyPEM, cr2.keyPEM) {
		t.Fatal("a second call issued a new registry certificate")
	}
	reg := parseCertPEM(t, cr1.certPEM)
	for _, h := range []string{"registry.wutong.local", "10.99.60.11", "cp1", "192.0.2.11"} {
		if err := verifyFor(t, work, reg, h); err != nil {
			t.Errorf("registry certificate for %s: %v", h, err)
		}
	}
	if err := verifyFor(t, work, reg, "wutong.wutong-system.svc.cluster.local"); err == nil {
		t.Error("the registry's certificate names the platform")
	}
	plat, _, err := in.platformCert(work)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(plat, cr1.certPEM) {
		t.Fatal("the platform got the registry's certificate")
	}
	if cr3, _ := in.credentials(work); !bytes.Equal(cr3.certPEM, cr1.certPEM) {
		t.Error("issuing the platform's certificate replaced the registry's")
	}
	// The same list, in the same order, as before the helper was shared: an upgrade keeps the registry's certificate.
	if got, err := os.ReadFile(filepath.Join(work, PKIDir, "registry.hosts")); err != nil || string(got) != "registry.wutong.local\n10.99.60.11\ncp1\n192.0.2.11" {
		t.Errorf("registry.hosts %q, %v", got, err)
	}
}
