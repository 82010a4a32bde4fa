// Package logging builds the zap loggers of the acceptor and its workers:
// JSON for production (journald and log shippers), console for people.
package logging

import (
	"fmt"
	"os"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Options selects the logger's level, format and destination.
type Options struct {
	Level  string // debug, info, warn, error
	Format string // json or console
	File   string // empty: stderr
}

// Logger is a zap logger whose file can be reopened (SIGUSR1, after log
// rotation) and whose level can change on reload.
type Logger struct {
	*zap.Logger
	Level zap.AtomicLevel
	out   *reopenWriter
}

// New builds a Logger.
func New(o Options) (*Logger, error) {
	lvl, err := zapcore.ParseLevel(defaultString(o.Level, "info"))
	if err != nil {
		return nil, fmt.Errorf("logging: level %q: %w", o.Level, err)
	}
	ecfg := zap.NewProductionEncoderConfig()
	ecfg.TimeKey = "ts"
	ecfg.EncodeTime = zapcore.ISO8601TimeEncoder
	ecfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	switch defaultString(o.Format, "json") {
	case "json":
		enc = zapcore.NewJSONEncoder(ecfg)
	case "console":
		ecfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ecfg)
	default:
		return nil, fmt.Errorf("logging: format %q: want json or console", o.Format)
	}
	w := &reopenWriter{path: o.File}
	if err := w.Reopen(); err != nil {
		return nil, err
	}
	level := zap.NewAtomicLevelAt(lvl)
	core := zapcore.NewCore(enc, zapcore.Lock(w), level)
	return &Logger{Logger: zap.New(core), Level: level, out: w}, nil
}

// Reopen reopens the log file (no-op when logging to stderr).
func (l *Logger) Reopen() error { return l.out.Reopen() }

// SetLevel changes the level at run time.
func (l *Logger) SetLevel(s string) error {
	lvl, err := zapcore.ParseLevel(defaultString(s, "info"))
	if err != nil {
		return fmt.Errorf("logging: level %q: %w", s, err)
	}
	l.Level.SetLevel(lvl)
	return nil
}

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// reopenWriter writes to stderr or to a file that can be reopened.
type reopenWriter struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (w *reopenWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return os.Stderr.Write(p)
	}
	return w.f.Write(p)
}

func (w *reopenWriter) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	return w.f.Sync()
}

// Reopen opens the file anew, closing the old one.
func (w *reopenWriter) Reopen() error {
	if w.path == "" {
		return nil
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("logging: %w", err)
	}
	w.mu.Lock()
	old := w.f
	w.f = f
	w.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}
