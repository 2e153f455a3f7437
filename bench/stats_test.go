package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		in     []float64
		want   float64
		wantOK bool
	}{
		{nil, 0, false},
		{[]float64{3}, 3, true},
		{[]float64{3, 1, 2}, 2, true},
		{[]float64{4, 1, 3, 2}, 2.5, true},
		{[]float64{1, math.NaN(), 3}, 0, false},
		{[]float64{1, math.Inf(1)}, 0, false},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.in...)
		got, ok := Median(tt.in)
		if ok != tt.wantOK || (ok && got != tt.want) {
			t.Errorf("Median(%v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
		for i := range in {
			if in[i] != tt.in[i] && !math.IsNaN(in[i]) {
				t.Errorf("Median(%v) reordered its input", in)
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	xs := make([]float64, 1000)
	for i := range xs {
		xs[i] = float64(1000 - i) // 1000..1, unsorted
	}
	tests := []struct {
		p    float64
		want float64
		ok   bool
	}{
		{50, 500, true}, {99, 990, true}, {100, 1000, true}, {0.01, 1, true}, {0, 0, false}, {101, 0, false},
	}
	for _, tt := range tests {
		got, ok := Percentile(xs, tt.p)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Percentile(p=%v) = %v, %v; want %v, %v", tt.p, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := Percentile(nil, 50); ok {
		t.Errorf("Percentile(nil) ok = true, want false")
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		v, base, want float64
		ok            bool
	}{
		{50, 100, 0.5, true}, {3, 1.5, 2, true}, {1, 0, 0, false}, {math.NaN(), 1, 0, false}, {1, math.Inf(1), 0, false},
	}
	for _, tt := range tests {
		got, ok := Ratio(tt.v, tt.base)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Ratio(%v, %v) = %v, %v; want %v, %v", tt.v, tt.base, got, ok, tt.want, tt.ok)
		}
	}
}

func TestChartSVG(t *testing.T) {
	c := Chart{
		Title:  "vxtun <vs> kernel & co",
		Series: []string{"veth", "kernel-vxlan", "vxtun-vxlan"},
		Min:    0.01, Max: 10,
		Groups: []ChartGroup{
			{Label: "TCP 1 stream", Values: []ChartValue{{Value: 2, OK: true}, {Value: 1, OK: true}, {Value: 0.3, OK: true, Mark: "*"}}},
			{Label: "ping p50 (lower is better)", Values: []ChartValue{{Value: 0.5, OK: true}, {Value: 1, OK: true}, {}}},
			{Label: "huge", Values: []ChartValue{{Value: 1000, OK: true}, {Value: 1, OK: true}, {Value: 0.0001, OK: true}}},
		},
	}
	var buf bytes.Buffer
	if err := c.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML; count the bars and collect the text.
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	rects, texts := 0, []string{}
	var root string
	inText := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, buf.String())
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
			}
			if e.Name.Local == "rect" {
				rects++
			}
			inText = e.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, string(e))
			}
		case xml.EndElement:
			inText = false
		}
	}
	if root != "svg" {
		t.Errorf("got root element %q, want svg", root)
	}
	// 1 background + 3 legend swatches + 8 bars (one n/a).
	if want := 1 + 3 + 8; rects != want {
		t.Errorf("got %d rect elements, want %d", rects, want)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"vxtun <vs> kernel & co", "n/a", "0.3×*", "2×", "1e+03×", "ping p50 (lower is better)", "0.01×", "10×"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG text %q lacks %q", all, want)
		}
	}
	if err := (Chart{Series: []string{"a"}, Min: 1, Max: 1}).WriteSVG(io.Discard); err == nil {
		t.Errorf("got nil error for empty axis, want one")
	}
	if err := (Chart{Series: []string{"a"}, Min: 0.1, Max: 1, Groups: []ChartGroup{{Label: "x"}}}).WriteSVG(io.Discard); err == nil {
		t.Errorf("got nil error for a group without values, want one")
	}
}
