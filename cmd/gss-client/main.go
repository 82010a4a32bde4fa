// Command gss-client is a Go client for the gss-sample protocol, with the
// options of MIT's gss-client: it establishes a Kerberos GSS-API context
// with a server (gss-acceptor or MIT's gss-server), sends messages wrapped
// in it and verifies the MICs the server returns.
//
//	gss-client [options] host service message
//
// service is "service@host" (as MIT takes it) or "service/host[@REALM]".
// Credentials come from a credential cache (-ccache, else $KRB5CCNAME) or
// from a keytab (-keytab with -principal).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/version"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("gss-client", flag.ContinueOnError)
	port := fs.Int("port", 4444, "server port")
	mcount := fs.Int("mcount", 1, "messages per connection")
	ccount := fs.Int("ccount", 1, "connections, one after another")
	seq := fs.Bool("seq", false, "request sequence checking (GSS_C_SEQUENCE_FLAG)")
	noreplay := fs.Bool("noreplay", false, "do not request replay detection")
	nomutual := fs.Bool("nomutual", false, "do not request mutual authentication")
	nw := fs.Bool("nw", false, "send messages unwrapped")
	nx := fs.Bool("nx", false, "wrap for integrity only, without encryption")
	nm := fs.Bool("nm", false, "do not ask the server for a MIC")
	isFile := fs.Bool("f", false, "the message argument names a file whose contents are sent")
	quiet := fs.Bool("q", false, "quiet: print nothing on success")
	ccache := fs.String("ccache", "", "credential cache (default $KRB5CCNAME)")
	keytabPath := fs.String("keytab", "", "client keytab (with -principal) instead of a credential cache")
	principal := fs.String("principal", "", "client principal for -keytab, user[@REALM]")
	krb5conf := fs.String("krb5conf", "", "krb5.conf (default $KRB5_CONFIG, then /etc/krb5.conf)")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout for each network read or write")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gss-client [options] host service message")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Println("gss-client", version.String())
		return 0
	}
	if fs.NArg() != 3 {
		fs.Usage()
		return 2
	}
	host, service, msgArg := fs.Arg(0), fs.Arg(1), fs.Arg(2)
	msg := []byte(msgArg)
	if *isFile {
		b, err := os.ReadFile(msgArg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gss-client:", err)
			return 1
		}
		msg = b
	}

	cfg, err := client.LoadKrb5Conf(*krb5conf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gss-client:", err)
		return 1
	}
	var creds *client.Credentials
	if *keytabPath != "" {
		if *principal == "" {
			fmt.Fprintln(os.Stderr, "gss-client: -keytab needs -principal")
			return 2
		}
		creds, err = client.FromKeytab(*principal, *keytabPath, cfg)
	} else {
		creds, err = client.FromCCache(*ccache, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gss-client:", err)
		return 1
	}
	tkt, err := creds.ServiceTicket(service)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gss-client:", err)
		return 1
	}

	flags := gss.FlagMutual | gss.FlagReplay
	if *seq {
		flags |= gss.FlagSequence
	}
	if *noreplay {
		flags &^= gss.FlagReplay
	}
	if *nomutual {
		flags &^= gss.FlagMutual
	}
	mo := client.MessageOptions{NoWrap: *nw, NoEncrypt: *nx, NoMIC: *nm}
	addr := net.JoinHostPort(host, strconv.Itoa(*port))
	for i := 0; i < max(*ccount, 1); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		c, err := client.Dial(ctx, addr, tkt, client.Options{Flags: flags, Timeout: *timeout})
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "gss-client:", err)
			return 1
		}
		if !*quiet && i == 0 {
			g := c.Context()
			fmt.Printf("\"%s\" to \"%s\", flags %s, enctype %d\n", g.InitiatorName(), g.AcceptorName(), g.Flags(), g.Enctype())
		}
		for m := 0; m < *mcount; m++ {
			if err := c.Exchange(msg, mo); err != nil {
				c.Abort()
				fmt.Fprintln(os.Stderr, "gss-client:", err)
				return 1
			}
			if !*quiet {
				if *nm {
					fmt.Println("Response received.")
				} else {
					fmt.Println("Signature verified.")
				}
			}
		}
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "gss-client:", err)
			return 1
		}
	}
	return 0
}
