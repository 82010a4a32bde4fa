package gss

import (
	"errors"
	"fmt"
	"strings"
)

// Major is an RFC 2743 §1.2.1.1 major status value: a calling error in bits
// 24-31, a routine error in bits 16-23 and supplementary information in
// bits 0-15. It implements error so that sentinel comparisons read naturally:
//
//	if errors.Is(err, gss.StatusBadSig) { ... }
//	if errors.Is(err, gss.StatusDuplicateToken) { ... }
type Major uint32

// Routine errors (RFC 2744 §3.9.1), already shifted into place.
const (
	StatusComplete            Major = 0
	StatusBadMech             Major = 1 << 16
	StatusBadName             Major = 2 << 16
	StatusBadNameType         Major = 3 << 16
	StatusBadBindings         Major = 4 << 16
	StatusBadStatus           Major = 5 << 16
	StatusBadSig              Major = 6 << 16 // also GSS_S_BAD_MIC
	StatusNoCred              Major = 7 << 16
	StatusNoContext           Major = 8 << 16
	StatusDefectiveToken      Major = 9 << 16
	StatusDefectiveCredential Major = 10 << 16
	StatusCredentialsExpired  Major = 11 << 16
	StatusContextExpired      Major = 12 << 16
	StatusFailure             Major = 13 << 16
	StatusBadQOP              Major = 14 << 16
	StatusUnauthorized        Major = 15 << 16
	StatusUnavailable         Major = 16 << 16
	StatusDuplicateElement    Major = 17 << 16
	StatusNameNotMN           Major = 18 << 16
)

// Supplementary information bits (RFC 2744 §3.9.1). They may be combined
// with each other and with a routine error.
const (
	StatusContinueNeeded Major = 1 << 0
	StatusDuplicateToken Major = 1 << 1
	StatusOldToken       Major = 1 << 2
	StatusUnseqToken     Major = 1 << 3
	StatusGapToken       Major = 1 << 4
)

const (
	routineMask       Major = 0xff << 16
	callingMask       Major = 0xff << 24
	supplementaryMask Major = 0xffff
)

// Routine returns the routine-error part of m.
func (m Major) Routine() Major { return m & routineMask }

// Supplementary returns the supplementary-information bits of m.
func (m Major) Supplementary() Major { return m & supplementaryMask }

// IsError reports whether m is a failure: a calling or routine error, or one
// of the supplementary token-ordering codes, which MIT's sample programs and
// most callers treat as failures of the call that produced them.
func (m Major) IsError() bool {
	return m&(routineMask|callingMask) != 0 || m&(StatusDuplicateToken|StatusOldToken|StatusUnseqToken|StatusGapToken) != 0
}

var routineNames = [...]string{
	1:  "GSS_S_BAD_MECH",
	2:  "GSS_S_BAD_NAME",
	3:  "GSS_S_BAD_NAMETYPE",
	4:  "GSS_S_BAD_BINDINGS",
	5:  "GSS_S_BAD_STATUS",
	6:  "GSS_S_BAD_SIG",
	7:  "GSS_S_NO_CRED",
	8:  "GSS_S_NO_CONTEXT",
	9:  "GSS_S_DEFECTIVE_TOKEN",
	10: "GSS_S_DEFECTIVE_CREDENTIAL",
	11: "GSS_S_CREDENTIALS_EXPIRED",
	12: "GSS_S_CONTEXT_EXPIRED",
	13: "GSS_S_FAILURE",
	14: "GSS_S_BAD_QOP",
	15: "GSS_S_UNAUTHORIZED",
	16: "GSS_S_UNAVAILABLE",
	17: "GSS_S_DUPLICATE_ELEMENT",
	18: "GSS_S_NAME_NOT_MN",
}

var supplementaryNames = []struct {
	bit  Major
	name string
}{
	{StatusContinueNeeded, "GSS_S_CONTINUE_NEEDED"},
	{StatusDuplicateToken, "GSS_S_DUPLICATE_TOKEN"},
	{StatusOldToken, "GSS_S_OLD_TOKEN"},
	{StatusUnseqToken, "GSS_S_UNSEQ_TOKEN"},
	{StatusGapToken, "GSS_S_GAP_TOKEN"},
}

// String returns the RFC 2744 names of the bits set in m, joined by "|",
// for example "GSS_S_BAD_SIG" or "GSS_S_DUPLICATE_TOKEN".
func (m Major) String() string {
	if m == 0 {
		return "GSS_S_COMPLETE"
	}
	var parts []string
	if c := m & callingMask; c != 0 {
		parts = append(parts, fmt.Sprintf("GSS_S_CALL_ERROR(%d)", uint32(c)>>24))
	}
	if r := uint32(m.Routine()) >> 16; r != 0 {
		if int(r) < len(routineNames) && routineNames[r] != "" {
			parts = append(parts, routineNames[r])
		} else {
			parts = append(parts, fmt.Sprintf("GSS_S_ROUTINE_ERROR(%d)", r))
		}
	}
	for _, s := range supplementaryNames {
		if m&s.bit != 0 {
			parts = append(parts, s.name)
		}
	}
	return strings.Join(parts, "|")
}

// Error makes Major usable as a sentinel error value.
func (m Major) Error() string { return "gss: " + m.String() }

// Error is the error type returned by this package. It keeps the GSS major
// status, a mechanism minor status and, where the failure is a Kerberos
// protocol error, the RFC 4120 §7.5.9 error code, so a caller can both test
// it (errors.Is(err, gss.StatusBadSig), errors.As(err, &gerr)) and report it.
type Error struct {
	Major Major  // RFC 2743 major status
	Minor uint32 // mechanism-specific minor status (see the Minor* constants)
	// KRBCode is the Kerberos error code (KRB_AP_ERR_SKEW = 37, ...) when the
	// failure maps to one, else 0. It is the code sent in a KRB-ERROR token.
	KRBCode int32
	Msg     string // what went wrong, lowercase, no "gss:" prefix
	Err     error  // the underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("gss: ")
	b.WriteString(e.Major.String())
	if e.KRBCode != 0 {
		fmt.Fprintf(&b, " (krb5 error %d)", e.KRBCode)
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a Major status that e carries: a routine
// error matches when the routine parts are equal, and supplementary bits
// match when every bit of target is set in e.Major.
func (e *Error) Is(target error) bool {
	t, ok := target.(Major)
	if !ok {
		return false
	}
	if r := t.Routine(); r != 0 {
		return e.Major.Routine() == r && e.Major&t.Supplementary() == t.Supplementary()
	}
	if s := t.Supplementary(); s != 0 {
		return e.Major&s == s
	}
	return e.Major == 0
}

// Minor status values reported in Error.Minor. They follow the meaning of
// MIT's krb5 gssapi minor codes where one exists.
const (
	MinorNone           uint32 = 0
	MinorBadDirection   uint32 = 1 // token sent in the wrong direction (MIT G_BAD_DIRECTION)
	MinorWrongTokenID   uint32 = 2 // TOK_ID not the expected one
	MinorBadFiller      uint32 = 3 // filler bytes not 0xff
	MinorBadLength      uint32 = 4 // lengths inconsistent
	MinorBadFlags       uint32 = 5 // token flags inconsistent with the context
	MinorBadMechOID     uint32 = 6 // unknown mechanism OID
	MinorKrb5           uint32 = 7 // Kerberos protocol error: see KRBCode
	MinorReplayedToken  uint32 = 8 // per-message token seen before
	MinorContextExpired uint32 = 9
	MinorExported       uint32 = 10 // context was exported and is no longer usable here
	MinorImportReplay   uint32 = 11 // interprocess token already imported
	MinorImportDeadline uint32 = 12 // interprocess token older than its import deadline
	MinorBadSealKey     uint32 = 13 // interprocess token sealed with an unknown key
)

// newError is the constructor used throughout the package.
func newError(major Major, minor uint32, msg string, cause error) *Error {
	return &Error{Major: major, Minor: minor, Msg: msg, Err: cause}
}

// krbError builds an Error for a Kerberos protocol failure with the given
// RFC 4120 error code.
func krbError(major Major, code int32, msg string, cause error) *Error {
	return &Error{Major: major, Minor: MinorKrb5, KRBCode: code, Msg: msg, Err: cause}
}

// MajorOf returns the major status carried by err: the Major of a *Error or
// a bare Major, StatusComplete for nil, and StatusFailure otherwise.
func MajorOf(err error) Major {
	if err == nil {
		return StatusComplete
	}
	var ge *Error
	if errors.As(err, &ge) {
		return ge.Major
	}
	var m Major
	if errors.As(err, &m) {
		return m
	}
	return StatusFailure
}

// KRBCodeOf returns the Kerberos error code carried by err, or 0.
func KRBCodeOf(err error) int32 {
	var ge *Error
	if errors.As(err, &ge) {
		return ge.KRBCode
	}
	return 0
}
