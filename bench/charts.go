package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Chart is a line chart rendered as a standalone SVG file. It is drawn by
// hand (no dependency) and carries its own white background, so that it
// reads the same in GitHub's light and dark themes.
type Chart struct {
	Title    string
	Subtitle string
	XLabel   string
	YLabel   string
	// XLog and YLog put an axis on a logarithmic scale: for figures that
	// span decades (database sizes; stock PocketBase's CPU next to pbchat's).
	XLog, YLog bool
	// XTicks, when set, are the x ticks (e.g. the measured client counts);
	// otherwise they are chosen from the data.
	XTicks []float64
	Series []Series
	Refs   []RefLine
}

// Series is one line with a marker per point.
type Series struct {
	Name   string
	Color  string
	Dashed bool
	Points []Point
}

// Point is one measured value.
type Point struct{ X, Y float64 }

// RefLine is a horizontal line across the plot: a target.
type RefLine struct {
	Name  string
	Y     float64
	Color string
}

// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
const (
	colorPbchat  = "#0072B2" // blue
	colorPbchat2 = "#56B4E9" // sky blue
	colorStock   = "#D55E00" // vermillion
	colorHand    = "#E69F00" // orange
	colorFloor   = "#009E73" // green
	colorPurple  = "#CC79A7"
	colorTarget  = "#555555"
)

const (
	chartW      = 760
	plotLeft    = 78
	plotRight   = 24
	plotTop     = 64
	plotH       = 300
	legendRowH  = 22
	legendColW  = 360
	chartFont   = "font-family=\"-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\""
	textColor   = "#1f2328"
	mutedColor  = "#59636e"
	gridColor   = "#e4e7eb"
	axisColor   = "#59636e"
	svgHeaderNS = "http://www.w3.org/2000/svg"
)

// axis maps data values to pixels.
type axis struct {
	log      bool
	min, max float64 // in data units (min > 0 on a log axis)
	from, to float64 // pixels
	ticks    []float64
}

func (a axis) pos(v float64) float64 {
	lo, hi, x := a.min, a.max, v
	if a.log {
		lo, hi, x = math.Log10(lo), math.Log10(hi), math.Log10(math.Max(v, a.min))
	}
	if hi == lo {
		return (a.from + a.to) / 2
	}
	return a.from + (x-lo)/(hi-lo)*(a.to-a.from)
}

// niceStep is 1, 2, 2.5 or 5 times a power of ten, at least raw.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// linearTicks run from 0 to the first nice value at or above max, in about five steps.
func linearTicks(max float64) []float64 {
	if max <= 0 {
		max = 1
	}
	step := niceStep(max / 5)
	top := math.Ceil(max/step-1e-9) * step
	var out []float64
	for i := 0; float64(i)*step <= top+step/2; i++ {
		out = append(out, round6(float64(i)*step))
	}
	return out
}

// logTicks are the powers of ten around [min, max], with 2 and 5 between
// them when the range spans fewer than three decades.
func logTicks(min, max float64) []float64 {
	lo, hi := math.Floor(math.Log10(min)), math.Ceil(math.Log10(max))
	if hi == lo {
		hi++
	}
	var out []float64
	for e := lo; e <= hi; e++ {
		p := math.Pow(10, e)
		out = append(out, round6(p))
		if hi-lo < 3 && e < hi {
			out = append(out, round6(2*p), round6(5*p))
		}
	}
	return out
}

func round6(v float64) float64 {
	s := strconv.FormatFloat(v, 'g', 6, 64)
	r, _ := strconv.ParseFloat(s, 64)
	return r
}

// FormatTick writes a tick value short: 1.5k, 10k, 1M, 0.25.
func FormatTick(v float64) string {
	trim := func(f float64, suffix string) string {
		return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(f, 'f', 2, 64), "0"), ".") + suffix
	}
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trim(v/1e6, "M")
	case a >= 1e4 || (a >= 1000 && math.Mod(a, 100) == 0):
		return trim(v/1e3, "k")
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a == 0:
		return "0"
	}
	return trim(v, "")
}

func (c *Chart) bounds() (xmin, xmax, ymin, ymax float64, ok bool) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	for _, s := range c.Series {
		for _, p := range s.Points {
			if (c.XLog && p.X <= 0) || (c.YLog && p.Y <= 0) || math.IsNaN(p.X) || math.IsNaN(p.Y) {
				continue
			}
			xmin, xmax = math.Min(xmin, p.X), math.Max(xmax, p.X)
			ymin, ymax = math.Min(ymin, p.Y), math.Max(ymax, p.Y)
			ok = true
		}
	}
	for _, r := range c.Refs {
		ymin, ymax = math.Min(ymin, r.Y), math.Max(ymax, r.Y)
	}
	for _, t := range c.XTicks {
		xmin, xmax = math.Min(xmin, t), math.Max(xmax, t)
	}
	return
}

func (c *Chart) axes() (x, y axis, err error) {
	xmin, xmax, ymin, ymax, ok := c.bounds()
	if !ok {
		return x, y, fmt.Errorf("chart %q: no points to draw", c.Title)
	}
	x = axis{log: c.XLog, from: plotLeft + 16, to: chartW - plotRight - 16}
	switch {
	case len(c.XTicks) > 0:
		x.ticks = slices.Clone(c.XTicks)
		x.min, x.max = xmin, xmax
	case c.XLog:
		x.ticks = logTicks(xmin, xmax)
	default:
		x.ticks = linearTicks(xmax)
	}
	if len(c.XTicks) == 0 {
		x.min, x.max = x.ticks[0], x.ticks[len(x.ticks)-1]
		x.from, x.to = plotLeft, chartW-plotRight
	}
	y = axis{log: c.YLog, from: plotTop + plotH, to: plotTop}
	if c.YLog {
		y.ticks = logTicks(ymin, ymax)
	} else {
		y.ticks = linearTicks(ymax)
	}
	y.min, y.max = y.ticks[0], y.ticks[len(y.ticks)-1]
	return x, y, nil
}

// YTicks are the y axis' tick values (for tests and for a reader of the code).
func (c *Chart) YTicks() ([]float64, error) {
	_, y, err := c.axes()
	return y.ticks, err
}

// SVG renders the chart.
func (c *Chart) SVG() ([]byte, error) {
	xa, ya, err := c.axes()
	if err != nil {
		return nil, err
	}
	type entry struct {
		name, color string
		dashed, ref bool
	}
	var legend []entry
	for _, s := range c.Series {
		legend = append(legend, entry{s.Name, s.Color, s.Dashed, false})
	}
	for _, r := range c.Refs {
		legend = append(legend, entry{r.Name, cmp(r.Color, colorTarget), true, true})
	}
	// Two columns, filled column by column for the series (so that paired
	// series sit side by side), then the targets in rows of their own.
	cols := 2
	seriesRows := (len(c.Series) + cols - 1) / cols
	rows := seriesRows + (len(c.Refs)+cols-1)/cols
	cell := func(i int) (col, row int) {
		if i < len(c.Series) {
			return i / seriesRows, i % seriesRows
		}
		i -= len(c.Series)
		return i % cols, seriesRows + i/cols
	}
	legendTop := plotTop + plotH + 56
	height := legendTop + rows*legendRowH + 10

	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`<svg xmlns="%s" width="%d" height="%d" viewBox="0 0 %d %d" role="img" %s font-size="13">`+"\n", svgHeaderNS, chartW, height, chartW, height, chartFont)
	p("<title>%s</title>\n", esc(c.Title))
	p(`<rect class="background" x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", chartW, height)
	p(`<text class="title" x="%d" y="26" font-size="17" font-weight="600" fill="%s">%s</text>`+"\n", plotLeft-60, textColor, esc(c.Title))
	if c.Subtitle != "" {
		p(`<text class="subtitle" x="%d" y="46" font-size="12.5" fill="%s">%s</text>`+"\n", plotLeft-60, mutedColor, esc(c.Subtitle))
	}

	// Grid and y ticks.
	for _, t := range ya.ticks {
		yy := ya.pos(t)
		p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n", plotLeft, yy, chartW-plotRight, yy, gridColor)
		p(`<text class="ytick" x="%d" y="%.1f" text-anchor="end" fill="%s">%s</text>`+"\n", plotLeft-8, yy+4, mutedColor, esc(FormatTick(t)))
	}
	for _, t := range xa.ticks {
		xx := xa.pos(t)
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1"/>`+"\n", xx, plotTop+plotH, xx, plotTop+plotH+5, axisColor)
		p(`<text class="xtick" x="%.1f" y="%d" text-anchor="middle" fill="%s">%s</text>`+"\n", xx, plotTop+plotH+20, mutedColor, esc(FormatTick(t)))
	}
	// Axes.
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.2"/>`+"\n", plotLeft, plotTop, plotLeft, plotTop+plotH, axisColor)
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.2"/>`+"\n", plotLeft, plotTop+plotH, chartW-plotRight, plotTop+plotH, axisColor)
	xlabel := c.XLabel
	if c.XLog {
		xlabel += " (log scale)"
	}
	ylabel := c.YLabel
	if c.YLog {
		ylabel += " (log scale)"
	}
	p(`<text class="xlabel" x="%d" y="%d" text-anchor="middle" fill="%s">%s</text>`+"\n", (plotLeft+chartW-plotRight)/2, plotTop+plotH+40, textColor, esc(xlabel))
	p(`<text class="ylabel" transform="translate(18 %d) rotate(-90)" text-anchor="middle" fill="%s">%s</text>`+"\n", plotTop+plotH/2, textColor, esc(ylabel))

	// Targets under the data.
	for _, r := range c.Refs {
		yy := ya.pos(r.Y)
		p(`<line class="ref" x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="2 4"><title>%s</title></line>`+"\n",
			plotLeft, yy, chartW-plotRight, yy, cmp(r.Color, colorTarget), esc(r.Name))
	}
	for _, s := range c.Series {
		var pts []string
		var marks []Point
		for _, pt := range s.Points {
			if (c.XLog && pt.X <= 0) || (c.YLog && pt.Y <= 0) || math.IsNaN(pt.X) || math.IsNaN(pt.Y) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xa.pos(pt.X), ya.pos(pt.Y)))
			marks = append(marks, pt)
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="7 4"`
		}
		p(`<polyline class="series" fill="none" stroke="%s" stroke-width="2.4" stroke-linejoin="round"%s points="%s"><title>%s</title></polyline>`+"\n", s.Color, dash, strings.Join(pts, " "), esc(s.Name))
		for _, pt := range marks {
			fill := s.Color
			if s.Dashed {
				fill = "#ffffff"
			}
			p(`<circle cx="%.1f" cy="%.1f" r="4" fill="%s" stroke="%s" stroke-width="2"><title>%s: %s at %s</title></circle>`+"\n",
				xa.pos(pt.X), ya.pos(pt.Y), fill, s.Color, esc(s.Name), esc(FormatValue(pt.Y)), esc(FormatTick(pt.X)))
		}
	}

	// Legend below the x axis, two columns.
	for i, e := range legend {
		col, row := cell(i)
		x0 := plotLeft + col*legendColW
		y0 := legendTop + row*legendRowH
		p(`<g class="legend-entry">`)
		switch {
		case e.ref:
			p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.5" stroke-dasharray="2 4"/>`, x0, y0, x0+28, y0, e.color)
		case e.dashed:
			p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.4" stroke-dasharray="7 4"/><circle cx="%d" cy="%d" r="4" fill="#ffffff" stroke="%s" stroke-width="2"/>`, x0, y0, x0+28, y0, e.color, x0+14, y0, e.color)
		default:
			p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.4"/><circle cx="%d" cy="%d" r="4" fill="%s" stroke="%s" stroke-width="2"/>`, x0, y0, x0+28, y0, e.color, x0+14, y0, e.color, e.color)
		}
		p(`<text x="%d" y="%d" fill="%s">%s</text></g>`+"\n", x0+36, y0+4, textColor, esc(e.name))
	}
	p("</svg>\n")
	return b.Bytes(), nil
}

// FormatValue writes a measured value with three significant digits.
func FormatValue(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
