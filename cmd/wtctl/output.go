package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// outputFlag is -o/--output: text for people, json for programs.
type outputFlag struct{ format string }

type printer func(format string, a ...any)

func (o *outputFlag) register(c *cobra.Command) {
	c.Flags().StringVarP(&o.format, "output", "o", "text", "output format: text or json")
	c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

func (o *outputFlag) check() error {
	if o.format != "text" && o.format != "json" {
		return &usageError{fmt.Errorf("--output must be text or json, not %q", o.format)}
	}
	return nil
}

// print writes v as JSON, or calls text with a printf-style printer.
func (o *outputFlag) print(w io.Writer, v any, text func(p printer)) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(func(format string, a ...any) { fmt.Fprintf(w, format, a...) })
	return nil
}
