package main

import (
	"slices"
	"strings"
	"testing"
)

// -allow-clients sets allow_clients (comma list or repeated); a bad entry
// fails validation.
func TestAllowClientsFlag(t *testing.T) {
	o, err := parseFlags([]string{"-keytab", "/k.keytab", "-allow-clients", "alice@EXAMPLE.TEST,*@PARTNER.TEST", "-allow-clients", "bob@EXAMPLE.TEST"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alice@EXAMPLE.TEST", "*@PARTNER.TEST", "bob@EXAMPLE.TEST"}; !slices.Equal(cfg.AllowClients, want) {
		t.Fatalf("allow_clients %q, want %q", cfg.AllowClients, want)
	}
	o, _ = parseFlags([]string{"-keytab", "/k.keytab", "-allow-clients", "a*@R"})
	if _, err := loadConfig(o); err == nil || !strings.Contains(err.Error(), "allow_clients") {
		t.Fatalf("bad entry: %v", err)
	}
}
