package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// ChartFile is one chart the command wrote.
type ChartFile struct {
	Name  string // file name, e.g. bench-send-rate.svg
	Title string
	Path  string // as linked from the report (relative to it)
}

// namedChart is a chart and the file it goes to.
type namedChart struct {
	file  string
	chart Chart
}

// BuildCharts makes the report's charts from what the run measured; a
// chart whose scenario did not run is left out.
func (r *Results) BuildCharts() []namedChart {
	var out []namedChart
	if c, ok := r.cpuChart(); ok {
		out = append(out, namedChart{"bench-cpu-per-message.svg", c})
	}
	if c, ok := r.sendChart(); ok {
		out = append(out, namedChart{"bench-send-rate.svg", c})
	}
	if c, ok := r.readChart(); ok {
		out = append(out, namedChart{"bench-read-latency.svg", c})
	}
	if c, ok := r.memoryChart(); ok {
		out = append(out, namedChart{"bench-memory.svg", c})
	}
	return out
}

// WriteCharts renders the charts into dir and records them in r.Charts,
// linked relative to linkBase (the directory of the Markdown file).
func (r *Results) WriteCharts(dir, linkBase string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	r.Charts = nil
	for _, nc := range r.BuildCharts() {
		svg, err := nc.chart.SVG()
		if err != nil {
			return err
		}
		path := filepath.Join(dir, nc.file)
		if err := os.WriteFile(path, svg, 0o644); err != nil {
			return fmt.Errorf("chart %s: %w", nc.file, err)
		}
		link := path
		if rel, err := filepath.Rel(linkBase, path); err == nil {
			link = rel
		}
		r.Charts = append(r.Charts, ChartFile{Name: nc.file, Title: nc.chart.Title, Path: filepath.ToSlash(link)})
	}
	return nil
}

func (r *Results) clientCounts() []float64 {
	var out []float64
	for _, x := range r.Realtime {
		if v := float64(x.Config.Clients); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

var styleColors = map[string]string{StyleStock: colorStock, StyleRoomTopics: colorPbchat, StyleStockPbchat: colorPbchat2}

func (r *Results) cpuChart() (Chart, bool) {
	c := Chart{
		Title:    "Server CPU per message against connected clients",
		Subtitle: "median per message, insert included; solid: 1,000-member room, dashed: 50-member room",
		XLabel:   "connected SSE clients", YLabel: "CPU ms per message",
		YLog: true, XTicks: r.clientCounts(),
	}
	for _, room := range []string{"big", "small"} {
		for _, style := range []string{StyleStock, StyleRoomTopics, StyleStockPbchat} {
			s := Series{Color: styleColors[style], Dashed: room == "small"}
			for _, x := range r.Realtime {
				if x.Config.Style != style {
					continue
				}
				f := x.Big
				if room == "small" {
					f = x.Small
				}
				s.Name = fmt.Sprintf("%s, %s-member room", style, thousands(f.Members))
				s.Points = append(s.Points, Point{float64(x.Config.Clients), ms(f.CPUPerMessage)})
			}
			if len(s.Points) > 0 {
				c.Series = append(c.Series, s)
			}
		}
	}
	if len(c.Series) == 0 {
		return c, false
	}
	c.Refs = []RefLine{{Name: "target: 10 µs per delivered event (10 ms per message to 1,000)", Y: ms(targetPerEvent) * 1000}}
	return c, true
}

func (r *Results) sendChart() (Chart, bool) {
	if len(r.Sizes) == 0 {
		return Chart{}, false
	}
	largest := r.Sizes[len(r.Sizes)-1]
	var conc []float64
	for _, c := range concurrencies(largest.Send) {
		conc = append(conc, float64(c))
	}
	c := Chart{
		Title:    "Send rate against concurrent senders",
		Subtitle: fmt.Sprintf("POST chat_messages over HTTP, %s messages in the database; floor: raw INSERTs, no HTTP", sizeName(largest.Dataset.Messages)),
		XLabel:   "concurrent senders", YLabel: "messages per second",
		XLog: true, XTicks: conc,
	}
	for _, v := range []struct{ name, color string }{{SendPbchat, colorPbchat}, {SendHand, colorHand}, {SendFloor, colorFloor}} {
		s := Series{Name: v.name, Color: v.color, Dashed: v.name == SendFloor}
		for _, x := range largest.Send {
			if x.Variant == v.name {
				s.Points = append(s.Points, Point{float64(x.Concurrency), x.PerSecond})
			}
		}
		if len(s.Points) > 0 {
			c.Series = append(c.Series, s)
		}
	}
	if len(c.Series) == 0 {
		return c, false
	}
	c.Refs = []RefLine{{Name: "target: 3,000 msg/s at 64 senders", Y: targetSendRate}}
	return c, true
}

func (r *Results) readChart() (Chart, bool) {
	var sizes []float64
	for _, s := range r.Sizes {
		sizes = append(sizes, float64(s.Dataset.Messages))
	}
	c := Chart{
		Title:    "Rooms overview and unread latency against messages stored",
		Subtitle: fmt.Sprintf("p50 over HTTP for a user in %d rooms; dashed: a hand-written view collection on plain PocketBase", FocusRooms),
		XLabel:   "messages in the database", YLabel: "p50 ms",
		XLog: len(sizes) > 1, XTicks: sizes,
	}
	for _, v := range []struct {
		what, side, name, color string
	}{
		{"overview", "pbchat", "overview, pbchat", colorPbchat},
		{"overview", SideView, "overview, hand-written view", colorPbchat},
		{"unread", "pbchat", "unread, pbchat", colorStock},
		{"unread", SideView, "unread, hand-written view", colorStock},
	} {
		s := Series{Name: v.name, Color: v.color, Dashed: v.side != "pbchat"}
		for _, size := range r.Sizes {
			if x := size.read(v.what, v.side); x != nil {
				s.Points = append(s.Points, Point{float64(size.Dataset.Messages), ms(x.P50)})
			}
		}
		if len(s.Points) > 0 {
			c.Series = append(c.Series, s)
		}
	}
	if len(c.Series) == 0 {
		return c, false
	}
	c.Refs = []RefLine{
		{Name: "target: overview ≤ 3 ms", Y: ms(targetOverviewP50), Color: colorPbchat},
		{Name: "target: unread ≤ 2 ms", Y: ms(targetUnreadP50), Color: colorStock},
	}
	return c, true
}

func (r *Results) memoryChart() (Chart, bool) {
	counts := r.clientCounts()
	c := Chart{
		Title:    "Server memory held by idle realtime clients",
		Subtitle: "resident memory with N idle subscribed SSE clients, minus the same before they connected",
		XLabel:   "connected SSE clients", YLabel: "MiB",
		XTicks: append([]float64{0}, counts...),
	}
	// The capacity run's one process is the room-topics setup at its size.
	var capacity *CapacityRun
	if r.Capacity != nil && r.Capacity.Single != nil && r.Capacity.Single.Held > 0 && r.Capacity.Single.RSSPerClientKiB > 0 {
		capacity = r.Capacity.Single
		c.XTicks = append(c.XTicks, float64(capacity.Held))
		slices.Sort(c.XTicks)
		c.XTicks = slices.Compact(c.XTicks)
		c.Subtitle += fmt.Sprintf("; %s clients: the capacity run", thousands(capacity.Held))
	}
	for _, style := range []string{StyleStock, StyleRoomTopics, StyleStockPbchat} {
		s := Series{Name: style, Color: styleColors[style], Points: []Point{{0, 0}}}
		for _, x := range r.Realtime {
			if x.Config.Style == style {
				s.Points = append(s.Points, Point{float64(x.Config.Clients), x.IdleRSSPer1k * float64(x.Config.Clients) / 1000})
			}
		}
		if style == StyleRoomTopics && capacity != nil {
			s.Points = append(s.Points, Point{float64(capacity.Held), capacity.RSSPerClientKiB * float64(capacity.Held) / 1024})
		}
		slices.SortFunc(s.Points, func(a, b Point) int { return cmpFloat(a.X, b.X) })
		if len(s.Points) > 1 {
			c.Series = append(c.Series, s)
		}
	}
	if len(c.Series) == 0 {
		return c, false
	}
	target := Series{Name: "target: 24 KiB per client", Color: colorTarget, Dashed: true}
	for _, n := range c.XTicks {
		target.Points = append(target.Points, Point{n, n * targetIdleClientKiB / 1024})
	}
	c.Series = append(c.Series, target)
	return c, true
}

// thousands writes n with comma separators: 1,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
