package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// svgDoc is what a test reads back from a rendered chart.
type svgDoc struct {
	root        string
	background  string // fill of the background rect
	classCount  map[string]int
	classTexts  map[string][]string // text of <text class=…> elements
	legendTexts []string
}

func parseSVG(t *testing.T, svg []byte) svgDoc {
	t.Helper()
	doc := svgDoc{classCount: map[string]int{}, classTexts: map[string][]string{}}
	d := xml.NewDecoder(bytes.NewReader(svg))
	var stack []string // class of each open element
	inLegend := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not valid XML: %v\n%s", err, svg)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			class := ""
			for _, a := range x.Attr {
				if a.Name.Local == "class" {
					class = a.Value
				}
				if class == "background" && a.Name.Local == "fill" {
					doc.background = a.Value
				}
			}
			if doc.root == "" {
				doc.root = x.Name.Local
				if x.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root namespace %q", x.Name.Space)
				}
			}
			if class == "background" {
				for _, a := range x.Attr {
					if a.Name.Local == "fill" {
						doc.background = a.Value
					}
				}
			}
			if class != "" {
				doc.classCount[class]++
			}
			if class == "legend-entry" {
				inLegend++
			}
			stack = append(stack, class)
		case xml.EndElement:
			if stack[len(stack)-1] == "legend-entry" {
				inLegend--
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			text := strings.TrimSpace(string(x))
			if text == "" || len(stack) == 0 {
				continue
			}
			if c := stack[len(stack)-1]; c != "" {
				doc.classTexts[c] = append(doc.classTexts[c], text)
			}
			if inLegend > 0 {
				doc.legendTexts = append(doc.legendTexts, text)
			}
		}
	}
	return doc
}

func TestChartSVG(t *testing.T) {
	cases := []struct {
		name       string
		chart      Chart
		wantYMax   string // label of the highest y tick
		wantXTicks []string
		wantLegend []string
	}{
		{
			name: "linear axes, a target above the data",
			chart: Chart{
				Title: "Send rate", XLabel: "senders", YLabel: "msg/s", XLog: true, XTicks: []float64{1, 16, 64},
				Series: []Series{
					{Name: "pbchat", Color: colorPbchat, Points: []Point{{1, 813}, {16, 1555}, {64, 1355}}},
					{Name: "hand-written rule", Color: colorHand, Points: []Point{{1, 735}, {16, 1334}, {64, 1290}}},
				},
				Refs: []RefLine{{Name: "target: 3,000 msg/s", Y: 3000}},
			},
			wantYMax:   "3k",
			wantXTicks: []string{"1", "16", "64"},
			wantLegend: []string{"pbchat", "hand-written rule", "target: 3,000 msg/s"},
		},
		{
			name: "data above the target sets the top",
			chart: Chart{
				Title: "Floor", XLabel: "senders", YLabel: "msg/s", XTicks: []float64{1, 16, 64},
				Series: []Series{{Name: "SQLite floor", Color: colorFloor, Dashed: true, Points: []Point{{1, 10311}, {16, 6985}, {64, 5970}}}},
				Refs:   []RefLine{{Name: "target", Y: 3000}},
			},
			wantYMax:   "12.5k",
			wantXTicks: []string{"1", "16", "64"},
			wantLegend: []string{"SQLite floor", "target"},
		},
		{
			name: "log y axis over three decades",
			chart: Chart{
				Title: "CPU per message", XLabel: "clients", YLabel: "ms", YLog: true, XTicks: []float64{1000, 5000, 10000},
				Series: []Series{
					{Name: "stock PocketBase", Color: colorStock, Points: []Point{{1000, 324}, {5000, 1442}, {10000, 2974}}},
					{Name: "pbchat room topics", Color: colorPbchat, Points: []Point{{1000, 21.5}, {5000, 25.3}, {10000, 26.1}}},
					{Name: "pbchat room topics, 50-member room", Color: colorPbchat, Dashed: true, Points: []Point{{1000, 1.99}, {5000, 2.21}, {10000, 2.32}}},
				},
			},
			wantYMax:   "10k",
			wantXTicks: []string{"1k", "5k", "10k"},
			wantLegend: []string{"stock PocketBase", "pbchat room topics", "pbchat room topics, 50-member room"},
		},
		{
			name: "log x axis chosen from the data, small values",
			chart: Chart{
				Title: "Latency <p50> & more", XLabel: "messages", YLabel: "ms", XLog: true,
				Series: []Series{{Name: "overview <pbchat> & co", Color: colorPbchat, Points: []Point{{10_000, 0.8}, {100_000, 1.1}, {1_000_000, 2.4}}}},
			},
			wantYMax:   "2.5",
			wantXTicks: []string{"10k", "20k", "50k", "100k", "200k", "500k", "1M"},
			wantLegend: []string{"overview <pbchat> & co"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svg, err := tc.chart.SVG()
			if err != nil {
				t.Fatal(err)
			}
			doc := parseSVG(t, svg)
			if doc.root != "svg" {
				t.Fatalf("root element %q", doc.root)
			}
			if doc.background != "#ffffff" {
				t.Errorf("background %q, want an opaque white rect (dark theme)", doc.background)
			}
			yticks := doc.classTexts["ytick"]
			if len(yticks) < 3 || len(yticks) > 9 {
				t.Errorf("%d y ticks: %v", len(yticks), yticks)
			}
			if got := yticks[len(yticks)-1]; got != tc.wantYMax {
				t.Errorf("highest y tick %q, want %q (all: %v)", got, tc.wantYMax, yticks)
			}
			if got := doc.classTexts["xtick"]; strings.Join(got, ",") != strings.Join(tc.wantXTicks, ",") {
				t.Errorf("x ticks %v, want %v", got, tc.wantXTicks)
			}
			if got := doc.classCount["series"]; got != len(tc.chart.Series) {
				t.Errorf("%d series lines, want %d", got, len(tc.chart.Series))
			}
			if got := doc.classCount["ref"]; got != len(tc.chart.Refs) {
				t.Errorf("%d target lines, want %d", got, len(tc.chart.Refs))
			}
			if got := doc.classCount["legend-entry"]; got != len(tc.wantLegend) {
				t.Errorf("%d legend entries, want %d", got, len(tc.wantLegend))
			}
			if strings.Join(doc.legendTexts, "|") != strings.Join(tc.wantLegend, "|") {
				t.Errorf("legend %q, want %q", doc.legendTexts, tc.wantLegend)
			}
			if got := doc.classTexts["title"]; len(got) != 1 || got[0] != tc.chart.Title {
				t.Errorf("title %q, want %q", got, tc.chart.Title)
			}
			// The y axis covers every point and target.
			ticks, err := tc.chart.YTicks()
			if err != nil {
				t.Fatal(err)
			}
			top := ticks[len(ticks)-1]
			for _, s := range tc.chart.Series {
				for _, p := range s.Points {
					if p.Y > top {
						t.Errorf("%s: %v above the top tick %v", s.Name, p.Y, top)
					}
				}
			}
			for _, r := range tc.chart.Refs {
				if r.Y > top {
					t.Errorf("target %v above the top tick %v", r.Y, top)
				}
			}
		})
	}
}

func TestChartWithoutPointsIsAnError(t *testing.T) {
	c := Chart{Title: "empty", Series: []Series{{Name: "nothing"}}}
	if _, err := c.SVG(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("err = %v, want one naming the chart", err)
	}
}

func TestFormatTick(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {0.25, "0.25"}, {2.5, "2.5"}, {10, "10"}, {500, "500"}, {1500, "1.5k"}, {3000, "3k"}, {10_000, "10k"}, {12_500, "12.5k"}, {1_000_000, "1M"}} {
		if got := FormatTick(tc.v); got != tc.want {
			t.Errorf("FormatTick(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// The report's charts: one per scenario that ran, each valid and with a
// legend entry per series.
func TestResultsCharts(t *testing.T) {
	cases := []struct {
		name string
		res  *Results
		want []string
	}{
		{"everything", sampleResults(), []string{"bench-cpu-per-message.svg", "bench-send-rate.svg", "bench-read-latency.svg", "bench-memory.svg"}},
		{"realtime only", &Results{Realtime: sampleResults().Realtime}, []string{"bench-cpu-per-message.svg", "bench-memory.svg"}},
		{"nothing", &Results{}, nil},
		{"the capacity run alone", &Results{Capacity: &CapacityFigures{Single: &CapacityRun{Tried: 19_500, Held: 19_500, RSSPerClientKiB: 20}}}, []string{"bench-memory.svg"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, nc := range tc.res.BuildCharts() {
				got = append(got, nc.file)
				svg, err := nc.chart.SVG()
				if err != nil {
					t.Fatalf("%s: %v", nc.file, err)
				}
				doc := parseSVG(t, svg)
				if n := doc.classCount["legend-entry"]; n != len(nc.chart.Series)+len(nc.chart.Refs) {
					t.Errorf("%s: %d legend entries for %d series and %d targets", nc.file, n, len(nc.chart.Series), len(nc.chart.Refs))
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("charts %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWriteChartsLinksRelativeToTheReport(t *testing.T) {
	dir := t.TempDir()
	res := sampleResults()
	if err := res.WriteCharts(dir+"/docs", dir); err != nil {
		t.Fatal(err)
	}
	if len(res.Charts) != 4 {
		t.Fatalf("%d charts written", len(res.Charts))
	}
	md := res.Markdown()
	for _, c := range res.Charts {
		if want := "](docs/" + c.Name + ")"; !strings.Contains(md, want) {
			t.Errorf("report has no link %q", want)
		}
	}
}

func TestMemoryChartTakesTheCapacityRun(t *testing.T) {
	r := metResults()
	r.Capacity.Single.RSSPerClientKiB = 20
	c, ok := r.memoryChart()
	if !ok {
		t.Fatal("no memory chart")
	}
	if got := c.XTicks; len(got) != 5 || got[4] != 19_500 {
		t.Errorf("x ticks %v, want 0, the three client counts and 19,500", got)
	}
	for _, s := range c.Series {
		last := s.Points[len(s.Points)-1]
		switch s.Name {
		case StyleRoomTopics:
			if last.X != 19_500 || last.Y < 380 || last.Y > 381 {
				t.Errorf("room topics ends at %v, want 19,500 clients × 20 KiB ≈ 380.9 MiB", last)
			}
		case StyleStock:
			if last.X != 10_000 {
				t.Errorf("stock ends at %v", last)
			}
		}
	}
}
