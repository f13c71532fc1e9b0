package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func init() { nodeCmds = append(nodeCmds, newNodeProbeCmd) }

func newNodeProbeCmd() *cobra.Command {
	var (
		caFile  string
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "probe URL --ca FILE",
		Short: "GET an HTTPS URL from this node, trusting only the given CA; fail unless it answers 2xx",
		Long: `Probe is how the installer checks, from every node, that a service the install started (the registry) is
reachable at its cluster name with the cluster CA, the way containerd and kubelet will reach it.`,
		Args: exactArgs(1, "one URL"),
		RunE: func(c *cobra.Command, args []string) error {
			pool := x509.NewCertPool()
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("probe: %w", err)
				}
				if !pool.AppendCertsFromPEM(pem) {
					return &usageError{fmt.Errorf("--ca %s: no PEM certificate in it", caFile)}
				}
			} else {
				return &usageError{errors.New("--ca is required: the probe trusts only the cluster CA")}
			}
			client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
			resp, err := client.Get(args[0])
			if err != nil {
				return fmt.Errorf("probe %s: %w", args[0], err)
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("probe %s: %s", args[0], resp.Status)
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: %s\n", args[0], resp.Status)
			return nil
		},
	}
	c.Flags().StringVar(&caFile, "ca", "", "PEM CA certificate to trust (and no other)")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return c
}
