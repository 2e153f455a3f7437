package nettest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// IperfResult is the part of an iperf3 -J client report the testbed uses.
// Byte and rate figures are payload (iperf3's own accounting).
type IperfResult struct {
	Protocol    string  // "TCP" or "UDP"
	Seconds     float64 // test duration as the receiver saw it
	SentBytes   int64
	RecvBytes   int64
	SentBps     float64 // bits per second, sender side
	RecvBps     float64 // bits per second, receiver side
	Retransmits int64   // TCP only
	Packets     int64   // UDP only: datagrams sent
	LostPackets int64   // UDP only
	LostPercent float64 // UDP only
}

// RecvPPS returns the datagrams per second that arrived (UDP).
func (r IperfResult) RecvPPS() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Packets-r.LostPackets) / r.Seconds
}

type iperfSum struct {
	Seconds       *float64 `json:"seconds"`
	Bytes         *float64 `json:"bytes"`
	BitsPerSecond *float64 `json:"bits_per_second"`
	Retransmits   float64  `json:"retransmits"`
	Packets       float64  `json:"packets"`
	LostPackets   float64  `json:"lost_packets"`
	LostPercent   float64  `json:"lost_percent"`
}

type iperfJSON struct {
	Start struct {
		TestStart struct {
			Protocol string `json:"protocol"`
		} `json:"test_start"`
	} `json:"start"`
	End struct {
		Sum         *iperfSum `json:"sum"`
		SumSent     *iperfSum `json:"sum_sent"`
		SumReceived *iperfSum `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// ErrIperf is wrapped by ParseIperf3 when iperf3 itself reported an error.
var ErrIperf = errors.New("iperf3 reported an error")

// ParseIperf3 parses the JSON an iperf3 client prints with -J.
func ParseIperf3(data []byte) (IperfResult, error) {
	var j iperfJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return IperfResult{}, fmt.Errorf("parse iperf3 json: %w", err)
	}
	if j.Error != "" {
		return IperfResult{}, fmt.Errorf("%w: %s", ErrIperf, j.Error)
	}
	s, r := j.End.SumSent, j.End.SumReceived
	if s == nil || r == nil {
		return IperfResult{}, errors.New("parse iperf3 json: no end.sum_sent/sum_received")
	}
	if s.Bytes == nil || s.BitsPerSecond == nil || r.Bytes == nil || r.BitsPerSecond == nil || r.Seconds == nil {
		return IperfResult{}, errors.New("parse iperf3 json: sums lack bytes, seconds or bits_per_second")
	}
	res := IperfResult{
		Protocol:    strings.ToUpper(j.Start.TestStart.Protocol),
		Seconds:     *r.Seconds,
		SentBytes:   int64(*s.Bytes),
		RecvBytes:   int64(*r.Bytes),
		SentBps:     *s.BitsPerSecond,
		RecvBps:     *r.BitsPerSecond,
		Retransmits: int64(s.Retransmits),
	}
	if res.Protocol == "UDP" {
		// iperf3 ≥ 3.? puts the receiver's loss in sum_received; older
		// versions only in sum. Sent datagrams come from the sender's sum.
		res.Packets = int64(s.Packets)
		loss := r
		if loss.Packets == 0 && j.End.Sum != nil {
			loss = j.End.Sum
		}
		res.LostPackets = int64(loss.LostPackets)
		res.LostPercent = loss.LostPercent
		if res.Packets == 0 {
			res.Packets = int64(loss.Packets)
		}
	}
	for _, v := range []float64{res.Seconds, res.SentBps, res.RecvBps, res.LostPercent, float64(res.SentBytes), float64(res.RecvBytes), float64(res.Packets), float64(res.LostPackets)} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return IperfResult{}, fmt.Errorf("parse iperf3 json: bad value %v", v)
		}
	}
	if res.Seconds == 0 {
		return IperfResult{}, errors.New("parse iperf3 json: zero duration")
	}
	return res, nil
}
