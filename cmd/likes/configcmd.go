package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/likes-sidecar/likes/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration (secrets redacted)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := load(cmd)
			if err != nil {
				return err
			}
			for _, l := range v.Redacted() {
				fmt.Println(l)
			}
			return nil
		},
	}
	names := make([]string, 0, len(config.Keys))
	for _, k := range config.Keys {
		names = append(names, k.Name)
	}
	config.AddFlags(cmd.Flags(), names...)
	return cmd
}
