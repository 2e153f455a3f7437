package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
)

// Chart is a grouped horizontal bar chart of ratios on a log scale.
type Chart struct {
	Title  string
	Series []string     // one colour per series (the modes), legend order
	Groups []ChartGroup // one group per metric
	// Min and Max bound the log axis (e.g. 0.01 and 10); values outside are
	// clamped and drawn with an open end.
	Min, Max float64
	// Footer is an optional line under the axis (e.g. what "*" means).
	Footer string
}

// ChartGroup is one metric: a value per series; OK false means "n/a".
type ChartGroup struct {
	Label  string
	Values []ChartValue // parallel to Chart.Series
}

// ChartValue is one bar.
type ChartValue struct {
	Value float64
	OK    bool
	Mark  string // appended to the value label, e.g. "*"
}

var chartColours = []string{"#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"}

// WriteSVG writes c as a standalone SVG document.
func (c Chart) WriteSVG(w io.Writer) error {
	if !(c.Min > 0) || !(c.Max > c.Min) {
		return fmt.Errorf("chart: bad axis [%v, %v]", c.Min, c.Max)
	}
	for _, g := range c.Groups {
		if len(g.Values) != len(c.Series) {
			return fmt.Errorf("chart: group %q has %d values for %d series", g.Label, len(g.Values), len(c.Series))
		}
	}
	const (
		width  = 900
		left   = 230 // label column
		right  = 60
		top    = 70
		barH   = 14
		barGap = 3
		grpGap = 16
	)
	plotW := float64(width - left - right)
	grpH := len(c.Series)*(barH+barGap) + grpGap
	height := top + len(c.Groups)*grpH + 60
	lmin, lmax := math.Log10(c.Min), math.Log10(c.Max)
	x := func(v float64) float64 {
		l := math.Log10(math.Min(math.Max(v, c.Min), c.Max))
		return float64(left) + (l-lmin)/(lmax-lmin)*plotW
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", left, esc(c.Title))
	// Legend.
	lx := float64(left)
	for i, s := range c.Series {
		fmt.Fprintf(&b, `<rect x="%.1f" y="32" width="12" height="12" fill="%s"/>`, lx, chartColours[i%len(chartColours)])
		fmt.Fprintf(&b, `<text x="%.1f" y="42">%s</text>`+"\n", lx+16, esc(s))
		lx += 16 + 8*float64(len(s)) + 20
	}
	// Grid: each decade, labelled; the line at 1 is the baseline.
	plotBottom := top + len(c.Groups)*grpH
	for e := math.Ceil(lmin); e <= lmax+1e-9; e++ {
		v := math.Pow(10, e)
		stroke, sw := "#dddddd", 1.0
		if e == 0 {
			stroke, sw = "#333333", 1.5
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="%.1f"/>`, x(v), top-8, x(v), plotBottom, stroke, sw)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s×</text>`+"\n", x(v), plotBottom+16, esc(fmt.Sprintf("%g", v)))
	}
	// Bars.
	for gi, g := range c.Groups {
		y0 := top + gi*grpH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y0+len(c.Series)*(barH+barGap)/2+4, esc(g.Label))
		for si, v := range g.Values {
			y := y0 + si*(barH+barGap)
			if !v.OK || math.IsNaN(v.Value) || math.IsInf(v.Value, 0) || v.Value <= 0 {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#888888">n/a</text>`+"\n", left+4, y+barH-3)
				continue
			}
			xe := x(v.Value)
			clamped := v.Value > c.Max || v.Value < c.Min
			fill := chartColours[si%len(chartColours)]
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"`, left, y, math.Max(xe-float64(left), 1), barH, fill)
			if clamped {
				b.WriteString(` fill-opacity="0.5"`)
			}
			b.WriteString("/>")
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", xe+4, y+barH-3, esc(fmt.Sprintf("%.3g×%s", v.Value, v.Mark)))
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555555">ratio to kernel vxlan, log scale</text>`+"\n", left, plotBottom+34)
	if c.Footer != "" {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555555">%s</text>`+"\n", left, plotBottom+52, esc(c.Footer))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
