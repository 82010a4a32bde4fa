package gss

import (
	"fmt"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// marshalKRBErrorToken builds the context token an acceptor sends when
// establishment fails and the initiator is waiting for a reply (it asked for
// mutual authentication): a KRB-ERROR (RFC 4120 §5.9.1) framed with TOK_ID
// 03 00 (RFC 4121 §4.1) and the OID the initiator used.
//
// Like MIT, the error carries the code, the server time and the server
// principal, and nothing else: in particular no e-text. The detailed reason
// is for the acceptor's log; the unauthenticated peer learns only the RFC
// 4120 code.
func marshalKRBErrorToken(mech []byte, code int32, sname types.PrincipalName, srealm string, now time.Time) ([]byte, error) {
	now = now.UTC()
	ke := messages.KRBError{
		PVNO:      iana.PVNO,
		MsgType:   msgtype.KRB_ERROR,
		STime:     now.Truncate(time.Second),
		Susec:     now.Nanosecond() / 1000,
		ErrorCode: code,
		Realm:     srealm,
		SName:     sname,
	}
	der, err := ke.Marshal()
	if err != nil {
		return nil, newError(StatusFailure, MinorNone, "encoding KRB-ERROR", err)
	}
	return appendInitialToken(nil, mech, tokIDKRBError, der), nil
}

// parseKRBError decodes the body of a KRB-ERROR context token received by
// the initiator and returns the *Error it reports.
func parseKRBError(b []byte) *Error {
	var ke messages.KRBError
	if err := guardedUnmarshal("KRB-ERROR", func() error { return ke.Unmarshal(b) }); err != nil {
		return err.(*Error)
	}
	msg := fmt.Sprintf("acceptor refused the context: %s", errorcode.Lookup(ke.ErrorCode))
	if ke.EText != "" {
		msg += fmt.Sprintf(" (%q)", ke.EText)
	}
	return krbError(majorForKRBCode(ke.ErrorCode), ke.ErrorCode, msg, nil)
}

// majorForKRBCode maps a Kerberos error code received from an acceptor to
// the major status the acceptor would have reported for it (the table in
// the Acceptor documentation), so that both ends classify a failure alike.
func majorForKRBCode(code int32) Major {
	switch code {
	case errorcode.KRB_AP_ERR_REPEAT:
		return StatusDuplicateToken
	case errorcode.KRB_AP_ERR_SKEW:
		return StatusContextExpired
	case errorcode.KRB_AP_ERR_TKT_EXPIRED:
		return StatusCredentialsExpired
	case errorcode.KRB_AP_ERR_NOKEY, errorcode.KRB_AP_ERR_BADKEYVER:
		return StatusNoCred
	case errorcode.KRB_AP_ERR_NOT_US:
		return StatusUnauthorized
	case errorcode.KRB_AP_ERR_MODIFIED, errorcode.KRB_AP_ERR_TKT_NYV, errorcode.KRB_AP_ERR_BADMATCH:
		return StatusDefectiveCredential
	case errorcode.KRB_AP_ERR_BAD_INTEGRITY:
		return StatusBadSig
	case errorcode.KDC_ERR_ETYPE_NOSUPP, errorcode.KDC_ERR_BADOPTION:
		return StatusUnavailable
	case errorcode.KRB_AP_ERR_BADVERSION, errorcode.KRB_AP_ERR_MSG_TYPE, errorcode.KRB_AP_ERR_INAPP_CKSUM:
		return StatusDefectiveToken
	}
	return StatusFailure
}
