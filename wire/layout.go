package wire

// Message sizes: sizeof each struct in the header.
const (
	HdrSize          = 8   // struct tvp_hdr
	PredSize         = 16  // struct tvp_pred
	AttachSize       = 160 // struct tvp_attach
	DetachSize       = 16  // struct tvp_detach
	StatsRequestSize = 8   // TVP_CMD_STATS: a bare struct tvp_hdr
	InjectSize       = 40  // struct tvp_inject
	HelloSize        = 24  // struct tvp_hello
	ReplySize        = 16  // struct tvp_reply
	StatSize         = 56  // struct tvp_stat
	StatsSize        = 240 // struct tvp_stats
	EventSize        = 184 // struct tvp_event
	ConfigSize       = 8   // struct tvp_config
)

// Field offsets, named struct_field as in the header. The codec uses only
// these; the C cross-check test compares each with offsetof.
const (
	offConfigVersion  = 0
	offConfigBootCmds = 4

	offHdrType = 0
	offHdrLen  = 2
	offHdrSeq  = 4

	offPredArg   = 0
	offPredOp    = 1
	offPredPad   = 2
	offPredValue = 8

	offAttachID      = 8
	offAttachKind    = 12
	offAttachClass   = 14
	offAttachOffset  = 16
	offAttachRate    = 20
	offAttachPID     = 24
	offAttachNArgs   = 28
	offAttachNPreds  = 29
	offAttachRegs    = 30
	offAttachPad     = 36
	offAttachSigMask = 40
	offAttachSymbol  = 48
	offAttachComm    = 112
	offAttachPreds   = 128

	offDetachID  = 8
	offDetachPad = 12

	offInjectKind = 8
	offInjectPad  = 10
	offInjectArg  = 12
	offInjectArg2 = 16
	offInjectPad2 = 20
	offInjectComm = 24

	offHelloVersion = 8
	offHelloClock   = 12
	offHelloNCPUs   = 14
	offHelloGuestNS = 16

	offReplyStatus = 8
	offReplyID     = 12

	offStatID        = 0
	offStatKind      = 4
	offStatClass     = 6
	offStatHits      = 8
	offStatDelivered = 16
	offStatFiltered  = 24
	offStatLimited   = 32
	offStatDropped   = 40
	offStatMissed    = 48

	offStatsCount = 8
	offStatsLast  = 10
	offStatsPad   = 12
	offStatsStats = 16

	offEventProbe     = 8
	offEventClass     = 12
	offEventCPU       = 14
	offEventGuestNS   = 16
	offEventPID       = 24
	offEventTID       = 28
	offEventComm      = 32
	offEventDropped   = 48
	offEventFlags     = 52
	offEventArgs      = 56
	offEventSig       = 104
	offEventOtherPID  = 108
	offEventOtherComm = 112
	offEventValue     = 128
	offEventText      = 136
)
