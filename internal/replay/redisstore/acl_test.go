package redisstore

import (
	"strings"
	"testing"
	"time"
)

// TestACLUser: AUTH with an ACL user (Redis 6+) from the URL's user and
// password, the least privilege the store needs: SET and PING on its own
// key prefix (docs/operations.md, "Running several hosts"), with the
// default user off. A wrong password, and a user without SET, are refused
// with Redis's own errors, which never show the password.
func TestACLUser(t *testing.T) {
	const password = "acl-pw-9"
	// Each ACL rule is its own argument after --user, as in a config file
	// line.
	r := startRedisWith(t, false,
		"--user", "default", "off",
		"--user", "gssacc", "on", ">"+password, "resetkeys", "~gss-acceptor:rc:*", "resetchannels", "-@all", "+set", "+ping",
		"--user", "reader", "on", ">"+password, "~*", "-@all", "+get", "+ping")
	now := time.Now()
	url := func(user, pw string) string { return "redis://" + user + ":" + pw + "@" + r.addr() + "/0" }

	s := newStore(t, Options{URL: url("gssacc", password), Timeout: 2 * time.Second})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("ACL user with SET and PING on the key prefix: %v", err)
	}
	for i, want := range []bool{true, false} {
		fresh, err := s.Insert(t.Context(), key(11), now, now.Add(time.Minute))
		if err != nil || fresh != want {
			t.Fatalf("insert %d as the ACL user: fresh %v err %v, want %v", i, fresh, err, want)
		}
	}
	// Batched inserts use the same commands.
	b := newStore(t, Options{URL: url("gssacc", password), Timeout: 2 * time.Second, Pipelines: 2})
	if fresh, err := b.Insert(t.Context(), key(12), now, now.Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("batched insert as the ACL user: fresh %v err %v", fresh, err)
	}

	for _, tt := range []struct {
		name, url, want string
	}{
		{"wrong password", url("gssacc", "nope"), "WRONGPASS"},
		{"user without SET", url("reader", password), "NOPERM"},
		{"default user (off)", "redis://" + r.addr() + "/0", "NOAUTH"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, Options{URL: tt.url, Timeout: 2 * time.Second})
			_, err := s.Insert(t.Context(), key(13), now, now.Add(time.Minute))
			if err == nil {
				t.Fatal("insert succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}
