package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/sidecar"
	"github.com/likes-sidecar/likes/store"
)

func newMigrate() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database schema migrations (PostgreSQL or SQLite)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := load(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sc := sidecar.StoreConfig(v)
			if err := sc.Validate(); err != nil {
				return err
			}
			db, err := store.OpenConfig(ctx, sc)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.Migrate(ctx); err != nil {
				return err
			}
			ver, err := db.SchemaVersion(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("%s: schema at version %d\n", db, ver)
			return nil
		},
	}
	config.AddFlags(cmd.Flags(), "db.url")
	return cmd
}
