package testrealm

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// RequireMIT skips t when the MIT programs are missing, or fails it when
// the CI environment variable is set: a CI run must exercise the real KDC,
// never silently skip it.
func RequireMIT(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%v; CI is set, so this is fatal", err)
	}
	t.Skipf("skipping: %v", err)
}

// New starts a realm in t.TempDir() and closes it when t finishes. See
// RequireMIT for what happens when MIT Kerberos is not installed.
func New(t testing.TB) *Realm {
	t.Helper()
	RequireMIT(t)
	r, err := Start(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// The realm Shared hands out, one per test binary.
var shared struct {
	mu      sync.Mutex
	inMain  bool   // RunMain is running the tests
	realm   *Realm // started on first use
	dir     string // its directory, removed by RunMain
	err     error  // sticky start failure
	started bool
}

// Main runs the tests of a package that uses Shared, stops the shared
// realm and exits. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testrealm.Main(m) }
//
// It does not return; use RunMain when TestMain has cleanup of its own.
func Main(m *testing.M) { os.Exit(RunMain(m)) }

// RunMain is Main for a TestMain with cleanup of its own: it runs the tests
// (m.Run), stops the shared realm if one was started, removes its
// directory, and returns the exit status instead of exiting, so that the
// caller's deferred cleanup runs. The status is the tests', or 1 if they
// passed but the realm did not stop cleanly. Shared may only be used while
// Main or RunMain runs.
func RunMain(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	if err := closeShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Shared returns the realm shared by every test in this test binary,
// starting it on first use. The package's TestMain must call Main or
// RunMain, which stop it after the last test; Shared fails the test
// otherwise. Tests must not Close the shared realm or change its standard
// principals, but may add their own with AddService (use names unique to
// the test).
func Shared(t testing.TB) *Realm {
	t.Helper()
	RequireMIT(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatal("testrealm: Shared needs TestMain to call testrealm.Main(m) or testrealm.RunMain(m)")
	}
	if !shared.started {
		shared.started = true
		shared.dir, shared.err = os.MkdirTemp("", "testrealm-")
		if shared.err == nil {
			shared.realm, shared.err = Start(Options{Dir: shared.dir})
		}
	}
	if shared.err != nil {
		t.Fatalf("testrealm: shared realm: %v", shared.err)
	}
	return shared.realm
}

// closeShared stops the shared realm, if one was started, and removes its
// directory.
func closeShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	var errs []error
	if shared.realm != nil {
		errs = append(errs, shared.realm.Close())
	}
	if shared.dir != "" {
		errs = append(errs, os.RemoveAll(shared.dir))
	}
	return errors.Join(errs...)
}
