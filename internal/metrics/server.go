package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Limits of the metrics endpoint. It has no authentication and is meant
// for one Prometheus server on loopback, so it stays small: a slow or
// hostile client cannot hold connections or scrape in parallel without
// bound.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 15 * time.Second
	idleTimeout       = 60 * time.Second
	scrapeTimeout     = 10 * time.Second
	maxInFlight       = 4
	maxHeaderBytes    = 8 << 10
)

// Handler returns the HTTP handler for the exposition format: "/metrics"
// serves the registry (text or protobuf, gzip when asked for); every
// other path is 404, any method but GET and HEAD 405.
func (m *Metrics) Handler() http.Handler {
	prom := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A failing collector yields a partial scrape, not a 500 that
		// hides everything else.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxInFlight,
		Timeout:             scrapeTimeout,
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		prom.ServeHTTP(w, r)
	})
	return mux
}

// Server is the running metrics endpoint.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Listen binds addr ("host:port"; the config package has already checked
// that it is loopback unless explicitly allowed) and serves Handler on it
// in the background. errorLog, if set, receives the HTTP server's own
// errors (e.g. TLS-looking garbage); nil discards them.
func (m *Metrics) Listen(addr string, errorLog *log.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	return m.serve(ln, errorLog), nil
}

func (m *Metrics) serve(ln net.Listener, errorLog *log.Logger) *Server {
	if errorLog == nil {
		errorLog = log.New(io.Discard, "", 0)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           m.Handler(),
			ReadHeaderTimeout: readHeaderTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          errorLog,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s
}

// Addr returns the address the endpoint listens on (with the real port
// when the configured one was 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the endpoint: no new connections, scrapes in progress
// finish until ctx ends, then the rest are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	if serr := <-s.done; err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("metrics: shutdown: %w", err)
	}
	return nil
}
