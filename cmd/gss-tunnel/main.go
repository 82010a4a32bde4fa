// Command gss-tunnel is the client side of a gss-acceptor proxy backend
// (docs/stream.md): it carries plaintext connections through Kerberos
// GSS-API contexts to the acceptor, which relays them to the service.
//
//	gss-tunnel -listen 127.0.0.1:6380 -connect gss.example.com:4444 -service redis@gss.example.com
//	gss-tunnel -stdio -connect gss.example.com:4444 -service host@gss.example.com
//
// Each local connection (or the one -stdio session) gets its own context:
// mutual authentication, replay and sequence detection, sealed records.
// Credentials come from the credential cache (KRB5CCNAME) or from
// -keytab and -principal.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/stream"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

type options struct {
	listen, connect, service string
	stdio                    bool
	keytab, principal        string
	krb5conf                 string
	timeout                  time.Duration
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	var o options
	fs := flag.NewFlagSet("gss-tunnel", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "", "accept local plaintext connections on this address (e.g. 127.0.0.1:6380)")
	fs.BoolVar(&o.stdio, "stdio", false, "carry one session over standard input and output")
	fs.StringVar(&o.connect, "connect", "", "gss-acceptor address, host:port")
	fs.StringVar(&o.service, "service", "", "service principal, service@host or service/host[@REALM]")
	fs.StringVar(&o.keytab, "keytab", "", "log in with this keytab (with -principal) instead of the credential cache")
	fs.StringVar(&o.principal, "principal", "", "client principal for -keytab")
	fs.StringVar(&o.krb5conf, "krb5conf", "", "krb5.conf (default $KRB5_CONFIG, else /etc/krb5.conf)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "connect and context establishment timeout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected arguments: " + strings.Join(fs.Args(), " "))
	case o.stdio == (o.listen != ""):
		return usage("give exactly one of -listen ADDR and -stdio")
	case o.connect == "" || o.service == "":
		return usage("-connect and -service are required")
	case (o.keytab == "") != (o.principal == ""):
		return usage("-keytab and -principal go together")
	}
	t, err := newTunnel(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gss-tunnel:", err)
		return exitError
	}
	if o.stdio {
		if err := t.session(newStdio()); err != nil {
			fmt.Fprintln(os.Stderr, "gss-tunnel:", err)
			return exitError
		}
		return exitOK
	}
	return t.serve(o.listen)
}

func usage(msg string) int {
	fmt.Fprintln(os.Stderr, "gss-tunnel:", msg)
	return exitUsage
}

type tunnel struct {
	o     options
	creds *client.Credentials
	log   *log.Logger
}

// newTunnel loads the credentials and gets a first service ticket, so
// that a missing ticket or an unknown service fails at once.
func newTunnel(o options) (*tunnel, error) {
	cfg, err := client.LoadKrb5Conf(o.krb5conf)
	if err != nil {
		return nil, err
	}
	var creds *client.Credentials
	if o.keytab != "" {
		creds, err = client.FromKeytab(o.principal, o.keytab, cfg)
	} else if creds, err = client.FromCCache("", cfg); err != nil {
		err = fmt.Errorf("no Kerberos ticket (run kinit, or use -keytab and -principal): %w", err)
	}
	if err != nil {
		return nil, err
	}
	t := &tunnel{o: o, creds: creds, log: log.New(os.Stderr, "gss-tunnel: ", 0)}
	if _, err := t.ticket(); err != nil {
		return nil, err
	}
	return t, nil
}

// ticket gets the service ticket (gokrb5 caches it), naming the usual
// failure plainly.
func (t *tunnel) ticket() (*client.Ticket, error) {
	tkt, err := t.creds.ServiceTicket(t.o.service)
	if err != nil {
		if strings.Contains(err.Error(), "KDC_ERR_S_PRINCIPAL_UNKNOWN") {
			return nil, fmt.Errorf("service principal %s is unknown to the KDC: %w", client.ServicePrincipal(t.o.service), err)
		}
		return nil, err
	}
	return tkt, nil
}

// dial connects and establishes a context, returning the stream.
func (t *tunnel) dial() (*stream.Conn, error) {
	tkt, err := t.ticket()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.o.timeout)
	defer cancel()
	c, err := client.Dial(ctx, t.o.connect, tkt, client.Options{
		Flags:   gss.FlagMutual | gss.FlagReplay | gss.FlagSequence | gss.FlagConf | gss.FlagInteg,
		Timeout: t.o.timeout,
	})
	if err != nil {
		var ge *gss.Error
		if errors.As(err, &ge) {
			return nil, fmt.Errorf("server %s refused the context: %w", t.o.connect, err)
		}
		return nil, err
	}
	nc, r := c.Raw()
	nc.SetDeadline(time.Time{})
	st, err := stream.New(nc, r, c.Context(), stream.Config{})
	if err != nil {
		c.Abort()
		return nil, err
	}
	return st, nil
}

// session carries one local connection through its own context.
func (t *tunnel) session(local io.ReadWriteCloser) error {
	st, err := t.dial()
	if err != nil {
		local.Close()
		return err
	}
	defer st.Context().Delete()
	defer st.Close()
	_, err = stream.Relay(st, local, stream.RelayOptions{})
	local.Close()
	var pe *stream.PeerError
	if errors.As(err, &pe) {
		return fmt.Errorf("server: %s", pe.Reason)
	}
	return err
}

// serve accepts local connections until SIGINT or SIGTERM.
func (t *tunnel) serve(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gss-tunnel:", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, func() { ln.Close() })
	t.log.Printf("listening on %s, tunnelling to %s (%s)", ln.Addr(), t.o.connect, t.o.service)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return exitOK
			}
			t.log.Printf("accept: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go func() {
			peer := c.RemoteAddr().String()
			if err := t.session(c); err != nil {
				t.log.Printf("session from %s: %v", peer, err)
			}
		}()
	}
}

// stdio is standard input and output as one connection. CloseWrite
// closes standard output, so the peer's EOF reaches the reader of our
// output. A read of standard input cannot be interrupted, so a goroutine
// does it, one chunk ahead at most, and Close releases Read at once.
type stdio struct {
	in, out *os.File
	chunks  chan chunk
	done    chan struct{}
	once    sync.Once
}

type chunk struct {
	b   []byte
	err error
}

func newStdio() *stdio {
	s := &stdio{in: os.Stdin, out: os.Stdout, chunks: make(chan chunk), done: make(chan struct{})}
	go func() {
		for {
			b := make([]byte, stream.MaxChunk)
			n, err := s.in.Read(b)
			select {
			case s.chunks <- chunk{b[:n], err}:
			case <-s.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *stdio) Read(p []byte) (int, error) {
	select {
	case c := <-s.chunks:
		if len(c.b) > len(p) {
			return 0, io.ErrShortBuffer // Relay reads with MaxChunk buffers
		}
		n := copy(p, c.b)
		if c.err == nil || n > 0 && c.err == io.EOF {
			if c.err == io.EOF {
				// Deliver the bytes now and EOF on the next Read.
				go func() {
					select {
					case s.chunks <- chunk{nil, io.EOF}:
					case <-s.done:
					}
				}()
			}
			return n, nil
		}
		return n, c.err
	case <-s.done:
		return 0, net.ErrClosed
	}
}

func (s *stdio) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s *stdio) CloseWrite() error           { return s.out.Close() }
func (s *stdio) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}
