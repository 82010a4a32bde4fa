package config

import (
	"fmt"
	"net/url"
	"time"
)

// Redacted returns the effective value of every key, named as in the file,
// for a startup log line (and for `gss-acceptor -check-config` to print).
// Durations and sizes are written in the file's syntax ("30s", "64KiB"); an
// idle_timeout of NoIdleTimeout is "0", as in the file. A replay_cache URL's
// password is replaced by "xxxxx", and channel_bindings is shown as its length only: it is
// application data that operators may prefer to keep out of logs. The map
// and its slices are fresh copies. Redacted of nil is nil.
func (c *Config) Redacted() map[string]any {
	if c == nil {
		return nil
	}
	m := make(map[string]any, len(keys))
	for i := range keys {
		k := &keys[i]
		val := k.get(c)
		switch k.kind {
		case kindSize:
			val = formatSignedSize(val.(int))
		case kindDuration:
			val = formatDuration(val.(time.Duration))
		case kindIdle:
			d := val.(time.Duration)
			if d < 0 {
				d = 0
			}
			val = formatDuration(d)
		}
		m[k.name] = val
	}
	if u, err := url.Parse(c.ReplayCache); err == nil && u.User != nil {
		m["replay_cache"] = u.Redacted() // the Redis password
	}
	if n := len(c.ChannelBindings); n > 0 {
		m["channel_bindings"] = fmt.Sprintf("(%d bytes)", n)
	}
	return m
}
