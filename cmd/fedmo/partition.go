package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/fedmo/fedmo/data"
	"github.com/fedmo/fedmo/experiment"
)

func init() {
	register("partition", "write the partition a config produces (JSON index lists)", partitionCmd)
}

func partitionCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("fedmo partition", flag.ContinueOnError)
	var c common
	c.register(fs)
	out := fs.String("out", "", "JSON file to write: a list of index lists, one per client")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out FILE is required", errUsage)
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	fd, err := experiment.Dataset(cfg, buildOptions())
	if err != nil {
		return err
	}
	if err := data.WritePartitionFile(*out, fd.Parts); err != nil {
		return err
	}
	if !c.quiet {
		fmt.Printf("wrote the %s partition of %d training examples over %d clients to %s\n",
			cfg.Data.Partition, fd.Train.Len(), len(fd.Parts), *out)
	}
	return nil
}
