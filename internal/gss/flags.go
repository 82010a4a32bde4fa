package gss

import "strings"

// Flags are the GSS-API context flags (RFC 2744 §5.19 ret_flags /
// req_flags; the values are those of the C bindings and of the RFC 4121
// §4.1.1.1 checksum Flags field).
type Flags uint32

// Context flags.
const (
	FlagDeleg         Flags = 1 << 0 // GSS_C_DELEG_FLAG
	FlagMutual        Flags = 1 << 1 // GSS_C_MUTUAL_FLAG
	FlagReplay        Flags = 1 << 2 // GSS_C_REPLAY_FLAG
	FlagSequence      Flags = 1 << 3 // GSS_C_SEQUENCE_FLAG
	FlagConf          Flags = 1 << 4 // GSS_C_CONF_FLAG
	FlagInteg         Flags = 1 << 5 // GSS_C_INTEG_FLAG
	FlagAnon          Flags = 1 << 6 // GSS_C_ANON_FLAG
	FlagProtReady     Flags = 1 << 7 // GSS_C_PROT_READY_FLAG
	FlagTrans         Flags = 1 << 8 // GSS_C_TRANS_FLAG: the context can be exported
	FlagChannelBound  Flags = 1 << 11
	FlagDCEStyle      Flags = 1 << 12
	FlagIdentify      Flags = 1 << 13
	FlagExtendedError Flags = 1 << 14
)

var flagNames = []struct {
	f    Flags
	name string
}{
	{FlagDeleg, "DELEG"}, {FlagMutual, "MUTUAL"}, {FlagReplay, "REPLAY"},
	{FlagSequence, "SEQUENCE"}, {FlagConf, "CONF"}, {FlagInteg, "INTEG"},
	{FlagAnon, "ANON"}, {FlagProtReady, "PROT_READY"}, {FlagTrans, "TRANS"},
	{FlagChannelBound, "CHANNEL_BOUND"}, {FlagDCEStyle, "DCE_STYLE"},
	{FlagIdentify, "IDENTIFY"}, {FlagExtendedError, "EXTENDED_ERROR"},
}

// String lists the set flags, for example "MUTUAL|REPLAY|CONF|INTEG|TRANS".
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for _, n := range flagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, "|")
}
