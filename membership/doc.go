// Package membership is the gossip control plane of fedmo's coordinator and
// client processes: who is alive, where its gRPC service listens, which
// protocol version and config it runs, and how much work it takes. It is
// built on hashicorp/memberlist (v0.7.0, SWIM failure detection with
// Lifeguard). Models and updates never travel here; they go over gRPC.
//
// The coordinator depends only on the small Membership interface
// (Members, Events, Close), so that tests can substitute a fake. The
// deterministic simulator never runs this package: memberlist uses wall
// clocks, real sockets and global randomness.
//
// # Usage
//
//	g, err := membership.Start(ctx, membership.Config{
//		Bind:    "0.0.0.0:7946",
//		Seeds:   []string{"10.0.0.5:7946"}, // empty: start a new cluster
//		Meta:    membership.Meta{Role: membership.Client, GRPC: "10.0.0.7:50051",
//			Protocol: membership.ProtocolVersion, Config: fingerprint, Capacity: 4, Real: -1},
//		Profile: membership.ProfileLAN,
//		Logger:  logger,
//	})
//	if errors.Is(err, membership.ErrRefused) { /* incompatible: do not retry */ }
//	defer g.Close(shutdownCtx) // leave gracefully
//	for ev := range g.Events() { ... }
//
// # Meta
//
// Every member advertises a Meta in memberlist's node meta, which is
// limited to 512 bytes (memberlist panics beyond that; Encode, Start and
// SetMeta return an error instead). The encoding is binary and versioned:
// a format byte (1), the protocol version (uvarint), the role (1 byte),
// capacity (uvarint), the real client id (zig-zag varint, -1 = none), the
// gRPC address (length-prefixed) and the config fingerprint as 32 raw bytes
// (or none). A typical client meta is about 50 bytes; only the gRPC address
// varies, and it may be up to about 460 bytes. DecodeMeta validates every
// field, rejects trailing bytes (so encodings are canonical) and is fuzzed
// (FuzzDecodeMeta). The protocol version comes second so that a build can
// still name the protocol of a peer whose meta format it cannot read.
// Bulky state (hosted client lists, model hashes) belongs in gRPC.
//
// # Join-time checks
//
// A process is refused when its Meta.Protocol differs from a member's, or
// when its Meta.Config is non-empty and differs from a coordinator's
// non-empty Meta.Config (clients are not compared with each other; "" means
// not known yet and matches anything), or when an Accept function vetoes
// it, or when its name is taken. Each member applies the checks to every
// alive message it receives (memberlist AliveDelegate) and to every join
// push/pull (MergeDelegate), in both directions: the joiner judges the
// seed's cluster, and the cluster judges the joiner.
//
// memberlist itself only reports a refusal on the side that refuses: a
// joiner whose state the seed refuses to merge still gets a successful Join
// (measured: n=1, nil error). So Start works in three steps:
//
//  1. Probe: a throwaway memberlist on an ephemeral port advertises a probe
//     meta to each seed. The seed answers with its cluster state and
//     silently refuses to merge the probe; the joiner checks itself against
//     that state. An incompatible joiner stops here, without a trace in the
//     cluster (no log, no event), and Start returns a *RefusedError phrased
//     as the refusing member would, e.g.
//     membership: refused by coordinator "coord-1": protocol version 2, want 1
//     membership: refused by coordinator "coord-1": config fingerprint bbbbbbbbbbbb… differs from the coordinator's aaaaaaaaaaaa…
//     membership: refused by client "c1": the coordinator's config fingerprint bbbbbbbbbbbb… differs from this client's aaaaaaaaaaaa…
//     membership: refused: name "c7" is already in use by the member at 127.0.0.1:41234
//     membership: refused by client "c7": coordinator "coord-1" not accepted: <the joiner's Accept error>
//  2. Join: the real memberlist joins every reachable seed.
//  3. Confirm: the joiner repeats the push/pull with each seed until the
//     seed's state lists it. A seed that refused it (only the seed's own
//     Accept can differ from the joiner's view) sends its recent refusals
//     in the push/pull user state, so Start returns the seed's reason:
//     membership: refused by coordinator "coord-1": not accepted: <the seed's Accept error>
//
// Seeds that cannot be reached give
//
//	membership: join: no seed reachable (127.0.0.1:1, 127.0.0.1:2): failed to join 127.0.0.1:1: dial tcp …: connect: connection refused; …
//
// The checks also apply to meta updates: SetMeta refuses locally a meta
// that a current member would refuse, and a member ignores an update it
// would refuse. A member admitted earlier is not evicted when a check would
// fail later; the coordinator sees every member's Config in Members.
//
// # Names
//
// Names must be unique. Config.Name "" picks "<role>-<host>-<port>-<6 hex>".
// A Start whose name is held by a live member, or by a failed member that
// the cluster has not forgotten yet (GossipToTheDeadTime: 15 s local, 30 s
// lan), fails with a *RefusedError (see above); the existing member is
// unaffected. A member that left gracefully frees its name at once.
//
// # Leave and Fail
//
// memberlist reports graceful leaves and failures through the same
// NotifyLeave, and in v0.7.0 the Node it passes always has State ==
// StateAlive (hashicorp/memberlist#293), so the state cannot tell them
// apart. As in serf, a leaving member first sends a leave intent to every
// peer (a UDP user message), then calls memberlist's Leave. A peer reports
// Leave for a departure preceded by an intent, and Fail otherwise. Because
// memberlist processes its own dead messages ahead of user messages, an
// intent can arrive just after the departure on a busy machine; so a
// departure without an intent is withheld for a grace period (250 ms local,
// 1 s lan) before it is reported as Fail, and a late intent within that
// period still makes it a Leave. The member leaves Members at once either
// way. A rejoin within the grace period reports the Fail first.
//
// # Delivery
//
// memberlist v0.7.0 can silently drop a queued broadcast: its broadcast
// queue resets its id generator whenever it is momentarily empty, and a
// later broadcast with the same id, transmit count and length replaces an
// older one in the queue without notifying anyone (hashicorp/memberlist#263,
// open since 2022; #323). Measured here with plain memberlist: after an
// UpdateNode, 2-3 of 300 Leave calls timed out ("timeout waiting for leave
// broadcast") while the peers never got the leave by gossip. This package
// therefore (a) never calls UpdateNode while starting (hence the throwaway
// probe memberlist), and (b) waits for the Leave (in Close) and UpdateNode
// (in SetMeta) broadcasts only briefly (250 ms local, 2 s lan), then pushes
// the left or updated state by TCP push/pull to up to three peers,
// coordinators first; the peers apply it and gossip it on.
//
// # Profiles
//
// ProfileLocal suits processes on one machine or a quiet LAN: it starts
// from memberlist.DefaultLocalConfig and sets RetransmitMult 4,
// PushPullInterval 500 ms, ProbeInterval 200 ms, ProbeTimeout 100 ms,
// GossipInterval 20 ms, SuspicionMult 2 (GO-NOTES' "tuned for tests"
// profile) and TCPTimeout 5 s (1 s timed out on a loaded 2-vCPU machine).
// ProfileLAN is memberlist.DefaultLANConfig unchanged (ProbeInterval 1 s,
// ProbeTimeout 500 ms, SuspicionMult 4, GossipInterval 200 ms,
// PushPullInterval 30 s, TCPTimeout 10 s).
//
// Measured on 127.0.0.1 (2 vCPUs, load average about 3, no race detector),
// 5 members: a coordinator, then 4 clients joining it; min / median / max:
//
//	profile  convergence (first Start -> all list 5)  Leave seen by all  crash seen by all (Fail)
//	local    23 / 30 / 35 ms (10 runs)                 21 / 26 / 38 ms    0.98 / 1.01 / 1.21 s
//	lan      208 / 210 / 214 ms (3 runs)               201 / 202 / 204 ms 6.6 / 6.6 / 6.8 s
//
// The crash column includes the Fail grace period. Reproduce with
//
//	MEMBERSHIP_MEASURE=10 go test -count=1 -run TestMeasure -v ./membership
//
// The local profile stayed free of false failures in the tests under two
// CPU-bound busy loops on 2 vCPUs with the race detector; on a machine that
// is much more overloaded, prefer ProfileLAN.
//
// # Encryption and labels
//
// Config.KeyFile enables AES-GCM encryption of all gossip (memberlist
// SecretKey). The file holds a 16-, 24- or 32-byte key, in standard base64
// (what `openssl rand -base64 32` prints; surrounding whitespace ignored)
// or as exactly that many raw bytes; base64 is tried first. Every member
// needs the same key. A joiner with the wrong key or none fails Start with
// memberlist's reason, e.g. "remote state is encrypted and encryption is not
// configured", "encryption is configured but remote state is not
// encrypted" or "no installed keys could decrypt the message". Config.Label
// (at most 255 bytes, sent in clear but authenticated when encrypted) keeps
// clusters on one network apart; a label mismatch shows as "EOF", which
// Start's error explains.
//
// # Concurrency
//
// Gossip's methods are safe for concurrent use. memberlist's callbacks only
// take a short internal lock and never block memberlist; Config.Accept is
// called from them and must be fast and non-blocking as well.
//
// Events returns a buffered channel (Config.EventBuffer, default 1024). It
// never blocks memberlist: when it is full, the oldest queued event is
// dropped and counted (Dropped); a consumer that falls behind should then
// resync from Members. Events carry the local node's own changes too (its
// own Join comes first, its own Leave comes while Close leaves). Members and the event queue are
// updated under one lock, so after receiving an event Members reflects at
// least that change (a Fail is queued after the grace period, when the
// member has already left Members). Close closes the channel; it is the
// only sender's owner, so ranging over Events ends after Close.
//
// Close leaves and shuts down; it is idempotent and waits for an in-flight
// SetMeta or Join. The package starts no goroutines of its own apart from
// memberlist's (all stopped by Shutdown) and a timer per withheld Fail
// (stopped by Close).
package membership
