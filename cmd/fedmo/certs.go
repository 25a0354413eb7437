package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/fedmo/fedmo/security"
)

func init() {
	register("certs", "write a development CA, server and client certificates and a token", certsCmd)
}

// certsCmd: fedmo certs DIR [--host h]...; flags may come before or after
// DIR.
func certsCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("fedmo certs", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	var hosts setFlags
	fs.Var(&hosts, "host", "another name or IP address for the server certificate, besides 127.0.0.1, ::1 and localhost (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: fedmo certs DIR [--host h]...")
		fs.PrintDefaults()
	}
	var dirs []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(dirs) != 1 {
		return fmt.Errorf("%w: fedmo certs DIR [--host h]...: want one directory, got %d arguments", errUsage, len(dirs))
	}
	if err := security.WriteDevCerts(dirs[0], hosts); err != nil {
		return err
	}
	fmt.Printf("wrote %s/{%s,%s,%s,%s,%s,%s,%s}: for development only\n", dirs[0],
		security.CAFileName, security.CAKeyFileName, security.ServerFileName, security.ServerKeyFileName,
		security.ClientFileName, security.ClientKeyFileName, security.TokenFileName)
	return nil
}
