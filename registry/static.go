package registry

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/vxtun/vxtun/config"
)

// DefaultPollInterval is how often StaticSource checks its file for changes.
const DefaultPollInterval = time.Second

// StaticOptions tune a StaticSource; the zero value is usable.
type StaticOptions struct {
	// PollInterval between checks of the file's inode, size and mtime
	// (default DefaultPollInterval).
	PollInterval time.Duration
	// Logger receives reload and rejection lines (default slog.Default()).
	Logger *slog.Logger
	// Self and SelfMAC are this node's public IP and VTEP MAC: a file with
	// a peer that carries either is rejected (a loop to ourselves).
	Self    netip.Addr
	SelfMAC net.HardwareAddr
}

// StaticSource is a Source backed by the static peers file (see package
// config for the format). Run emits the file's peers as a Full update, then
// re-reads the file when it changes (polled: inode, size, mtime; so an
// atomic rename is noticed) and when Reload is called (the node calls it on
// SIGHUP). A changed, valid file is sent as a Full update; an unchanged peer
// set sends nothing. A file that fails to parse is logged, sent as a
// Rejected update (so the node counts it) and the previous peers stay in
// force; one that cannot be read is logged.
//
// Run must be called once. Reload is safe to call from any goroutine at any
// time.
type StaticSource struct {
	path     string
	nc       *config.NetConf
	own      []netip.Prefix
	scope    config.PeerScope // what ParsePeersIn holds the file against
	interval time.Duration
	log      *slog.Logger
	reload   chan struct{}
}

// NewStaticSource returns a source for the peers file at path, validated
// against nc and this node's own subnets (own).
func NewStaticSource(path string, nc *config.NetConf, own []netip.Prefix, opts StaticOptions) *StaticSource {
	s := &StaticSource{
		path:     path,
		nc:       nc,
		own:      slices.Clone(own),
		interval: opts.PollInterval,
		log:      opts.Logger,
		reload:   make(chan struct{}, 1),
	}
	s.scope = config.PeerScope{Network: nc, Own: s.own, Self: opts.Self, SelfMAC: slices.Clone(opts.SelfMAC)}
	if s.interval <= 0 {
		s.interval = DefaultPollInterval
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// Reload asks Run to re-read the file now, whether or not it looks changed.
// It does not block; requests made while one is pending are merged.
func (s *StaticSource) Reload() {
	select {
	case s.reload <- struct{}{}:
	default:
	}
}

// fileState is what the poller compares to notice a change.
type fileState struct {
	fi   os.FileInfo
	data []byte
}

// changed reports whether cur differs from the state last read. File
// timestamps have a coarse (jiffy) granularity, so a same-size rewrite
// within one tick keeps its mtime; while the mtime is that recent the
// content is compared as well.
func (st fileState) changed(cur os.FileInfo, now time.Time) bool {
	if st.fi == nil || !os.SameFile(st.fi, cur) || st.fi.Size() != cur.Size() ||
		!st.fi.ModTime().Equal(cur.ModTime()) {
		return true
	}
	return now.Sub(cur.ModTime()) < 2*time.Second
}

// read stats and reads the file. The stat is taken first, so a change that
// races with the read is seen by the next poll.
func (s *StaticSource) read() (fileState, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fileState{}, err
	}
	data, err := config.ReadFile(s.path, config.MaxPeersFileSize)
	if err != nil {
		return fileState{}, err
	}
	return fileState{fi: fi, data: data}, nil
}

// Run implements Source.
func (s *StaticSource) Run(ctx context.Context, out chan<- Update) error {
	st, err := s.read()
	if err != nil {
		return fmt.Errorf("static peers: %w", err)
	}
	peers, err := config.ParsePeersIn(s.path, st.data, s.scope)
	if err != nil {
		return fmt.Errorf("static peers: %w", err)
	}
	s.log.Info("static peers loaded", "file", s.path, "peers", len(peers))
	if err := send(ctx, out, Update{Full: true, Peers: peers}); err != nil {
		return err
	}

	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	lastErr := ""
	for {
		force := false
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.reload:
			force = true
		case <-tick.C:
		}
		if !force {
			fi, err := os.Stat(s.path)
			if err != nil {
				if msg := err.Error(); msg != lastErr {
					lastErr = msg
					s.log.Warn("static peers file unreadable; keeping the current peers",
						"file", s.path, "peers", len(peers), "err", err)
				}
				continue
			}
			if !st.changed(fi, time.Now()) {
				continue
			}
		}
		next, err := s.read()
		if err != nil {
			if msg := err.Error(); msg != lastErr || force {
				lastErr = msg
				s.log.Warn("static peers file unreadable; keeping the current peers",
					"file", s.path, "peers", len(peers), "err", err)
			}
			continue
		}
		lastErr = ""
		if !force && bytes.Equal(next.data, st.data) {
			st = next // touched, same content
			continue
		}
		st = next
		// Reached once per content change (or Reload), so each rejection
		// is logged once.
		trigger := "file changed"
		if force {
			trigger = "reload"
		}
		np, err := config.ParsePeersIn(s.path, next.data, s.scope)
		if err != nil {
			s.log.Error("static peers file rejected; keeping the current peers",
				"file", s.path, "peers", len(peers), "trigger", trigger, "err", err)
			// The node counts it (vxtun_peer_update_errors_total).
			if err := send(ctx, out, Update{Rejected: err}); err != nil {
				return err
			}
			continue
		}
		added, removed, updated := diffPeers(peers, np)
		if added+removed+updated == 0 {
			s.log.Info("static peers file re-read; no change", "file", s.path, "peers", len(np), "trigger", trigger)
			continue
		}
		peers = np
		s.log.Info("static peers reloaded", "file", s.path, "peers", len(np),
			"added", added, "removed", removed, "updated", updated, "trigger", trigger)
		if err := send(ctx, out, Update{Full: true, Peers: np}); err != nil {
			return err
		}
	}
}

// diffPeers counts peers (keyed by name) only in b, only in a, and in both
// but different.
func diffPeers(a, b []config.Peer) (added, removed, updated int) {
	old := make(map[string]config.Peer, len(a))
	for _, p := range a {
		old[p.Name] = p
	}
	for _, p := range b {
		q, ok := old[p.Name]
		switch {
		case !ok:
			added++
		case !peerEqual(p, q):
			updated++
		}
		delete(old, p.Name)
	}
	return added, len(old), updated
}
