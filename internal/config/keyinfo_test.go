package config

import "testing"

// Keys writes each default as the file and docs/configuration.md do.
func TestKeysDefaults(t *testing.T) {
	want := map[string]KeyInfo{
		"listen":                  {"listen", "list", `[":4444"]`},
		"keytab":                  {"keytab", "string", ""},
		"services":                {"services", "list", `[]`},
		"workers":                 {"workers", "int", ""},
		"worker_user":             {"worker_user", "id", `""`},
		"max_sessions_per_worker": {"max_sessions_per_worker", "int", "4096"},
		"worker_max_lifetime":     {"worker_max_lifetime", "duration", "0"},
		"idle_timeout":            {"idle_timeout", "duration", "5m"},
		"replay_cache_timeout":    {"replay_cache_timeout", "duration", "250ms"},
		"max_token_size":          {"max_token_size", "size", "64KiB"},
		"max_message_size":        {"max_message_size", "size", "1MiB"},
		"allow_delegation":        {"allow_delegation", "boolean", "false"},
		"stream_confidentiality":  {"stream_confidentiality", "boolean", "true"},
		"replay_cache_key_prefix": {"replay_cache_key_prefix", "string", "gss-acceptor:rc:"},
	}
	got := Keys()
	if len(got) != len(keys) {
		t.Fatalf("Keys() has %d keys, want %d", len(got), len(keys))
	}
	seen := 0
	for _, k := range got {
		if w, ok := want[k.Name]; ok {
			seen++
			if k != w {
				t.Errorf("Keys(): %+v, want %+v", k, w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("Keys() lists %d of the %d keys checked", seen, len(want))
	}
}
