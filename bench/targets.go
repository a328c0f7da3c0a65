package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// target is one row of a targets table. met is nil when this run did not
// measure it (miss then says why).
type target struct {
	name, goal, got string
	met             *bool
	miss            string // for a miss: by how much; when not measured: why
	profile         *profileRef
}

// profileRef points a target at the profile of the scenario that measured it.
type profileRef struct {
	label       string // file name in the profile dir, without .pprof
	focus       string // pprof -focus regexp: only the stacks through it
	sampleIndex string // pprof -sample_index (heap profiles)
	about       string // what the profile covers, for the reader
}

// CapacityFigures is the capacity scenario's outcome as the report reads
// it: how many SSE clients one process held, and a writer with realtime
// nodes over NATS. The scenario itself lives in bench/capacity*.go; the
// command fills this in when it runs it (-capacity), and the report says
// "not measured in this run" for whatever is nil.
type CapacityFigures struct {
	Single  *CapacityRun
	Cluster *CapacityRun
}

// CapacityRun is one topology at its largest size.
type CapacityRun struct {
	Tried, Held int // clients that were to connect, and that connected and stayed
	Nodes       int // realtime nodes (0: one process)
	// BigRoomP99 is the 1,000-member room's delivery p99 at this size (0: not measured).
	BigRoomP50, BigRoomP99 time.Duration
	RSSPerClientKiB        float64 // server memory per idle client (0: not measured)
	Profile                string  // label of a CPU profile in the profile dir, if any
	Note                   string
}

// Issue 15's figures.
const (
	targetSendRate      = 3000.0 // msg/s at concurrency 64, 1M messages
	targetOverviewP50   = 3 * time.Millisecond
	targetUnreadP50     = 2 * time.Millisecond
	targetHistoryP50    = 5 * time.Millisecond
	targetIdleClientKiB = 24.0
	targetPerEvent      = 10 * time.Microsecond
	targetOneProcess    = 19_500
	targetCluster       = 50_000
	targetMessages      = 1_000_000
)

func boolp(b bool) *bool { return &b }

// short says by how much got falls short of a floor goal.
func short(got, goal float64) string {
	return fmt.Sprintf("%.0f%% short", 100*(1-got/goal))
}

// over says by how much got passes a ceiling goal.
func over(got, goal float64) string {
	if got >= 2*goal {
		return fmt.Sprintf("%.1f× the target", got/goal)
	}
	return fmt.Sprintf("%.0f%% over", 100*(got/goal-1))
}

// atSize notes that a dataset-bound target was measured on a smaller one.
func atSize(size int) string {
	if size >= targetMessages {
		return ""
	}
	return fmt.Sprintf("measured at %s messages; the target is set at %s", sizeName(size), sizeName(targetMessages))
}

func joinNotes(notes ...string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}

// kib is MiB per 1,000 clients in KiB per client.
func kib(mibPer1k float64) float64 { return mibPer1k * 1024 / 1000 }

// Targets checks issue 15's targets (performance, round two) against the
// largest dataset and client count of the run.
func (r *Results) Targets() []target {
	var out []target
	notMeasured := func(name, goal, why string) target {
		return target{name: name, goal: goal, got: "–", miss: "not measured in this run" + why}
	}

	var largest *SizeResults
	if len(r.Sizes) > 0 {
		largest = &r.Sizes[len(r.Sizes)-1]
	}
	sendName, sendGoal := "send, 64 concurrent senders, 1M messages", "≥ 3,000 msg/s"
	if pb := r.largestSend(SendPbchat); pb != nil {
		size := largest.Dataset.Messages
		got := fmt.Sprintf("%.0f msg/s", pb.PerSecond)
		hand, floor := r.send(size, 64, SendHand), r.send(size, 64, SendFloor)
		if hand != nil && floor != nil {
			got += fmt.Sprintf(" (hand-written rule %.0f, SQLite floor %.0f)", hand.PerSecond, floor.PerSecond)
		}
		t := target{name: fmt.Sprintf("send, 64 concurrent senders, %s messages", sizeName(size)), goal: sendGoal, got: got, met: boolp(pb.PerSecond >= targetSendRate)}
		var why string
		if !*t.met {
			why = short(pb.PerSecond, targetSendRate)
			if pb.OtherCores >= 0.2 {
				why += fmt.Sprintf(", with other processes keeping %.1f of the %d cores busy meanwhile", pb.OtherCores, r.Machine.CPUs)
			}
			why += fmt.Sprintf("; %s µs of CPU per message (server and client), where 3,000 msg/s on %d cores allows %.0f µs", fus(pb.CPUPerMsg), r.Machine.CPUs, float64(r.Machine.CPUs)*1e6/targetSendRate)
			t.profile = &profileRef{label: fmt.Sprintf("send-c64-pbchat-%d", size), about: "pbchat's last send round at concurrency 64 (server and in-process client)"}
		}
		t.miss = joinNotes(why, atSize(size))
		out = append(out, t)
	} else {
		out = append(out, notMeasured(sendName, sendGoal, ""))
	}

	reads := []struct {
		what, goal string
		limit      time.Duration
		focus      string
	}{
		{"overview", "≤ 3 ms", targetOverviewP50, `hooks\.overview\.rooms`},
		{"unread", "≤ 2 ms", targetUnreadP50, `hooks\.overview\.unread`},
	}
	for _, x := range reads {
		name := fmt.Sprintf("rooms %s p50, user in %d rooms, 1M messages", x.what, FocusRooms)
		if x.what == "unread" {
			name = fmt.Sprintf("unread p50, user in %d rooms, 1M messages", FocusRooms)
		}
		var res *ReadResult
		if largest != nil {
			res = largest.read(x.what, "pbchat")
		}
		if res == nil {
			out = append(out, notMeasured(name, x.goal, ""))
			continue
		}
		size := largest.Dataset.Messages
		name = strings.Replace(name, "1M", sizeName(size), 1)
		got := fms(res.P50) + " ms"
		if v := largest.read(x.what, SideView); v != nil {
			got += " (hand-written view " + fms(v.P50) + " ms)"
		}
		t := target{name: name, goal: x.goal, got: got, met: boolp(res.P50 <= x.limit)}
		var why string
		if !*t.met {
			why = over(ms(res.P50), ms(x.limit))
			t.profile = &profileRef{label: fmt.Sprintf("read-%d", size), focus: x.focus,
				about: "the read scenario (pbchat and its baselines, alternately), stacks through pbchat's handler only"}
		}
		t.miss = joinNotes(why, atSize(size))
		out = append(out, t)
	}

	histName, histGoal := "history page p50, 50 messages with attachments and reactions expanded, 1M messages", "≤ 5 ms"
	if largest != nil && largest.read("history", "pbchat") != nil {
		res := largest.read("history", "pbchat")
		size := largest.Dataset.Messages
		got := fms(res.P50) + " ms"
		if v := largest.read("history", "stock PocketBase (same rules)"); v != nil {
			got += " (stock PocketBase " + fms(v.P50) + " ms)"
		}
		t := target{name: strings.Replace(histName, "1M", sizeName(size), 1), goal: histGoal, got: got, met: boolp(res.P50 <= targetHistoryP50)}
		var why string
		if !*t.met {
			why = over(ms(res.P50), ms(targetHistoryP50))
			t.profile = &profileRef{label: fmt.Sprintf("read-%d", size), focus: `apis\.recordsList`,
				about: "the read scenario, stacks through the records API's list handler (pbchat's and stock PocketBase's history pages alike)"}
		}
		t.miss = joinNotes(why, atSize(size))
		out = append(out, t)
	} else {
		out = append(out, notMeasured(histName, histGoal, ""))
	}

	maxClients := 0
	for _, x := range r.Realtime {
		maxClients = max(maxClients, x.Config.Clients)
	}
	pbStyles := []string{StyleRoomTopics, StyleStockPbchat}
	memName, memGoal := "server memory per idle realtime client", "≤ 24 KiB"
	if x := r.realtime(maxClients, StyleRoomTopics); x != nil {
		worst, got := 0.0, []string{}
		for _, style := range pbStyles {
			if y := r.realtime(maxClients, style); y != nil {
				worst = max(worst, kib(y.IdleRSSPer1k))
				got = append(got, fmt.Sprintf("%s %.1f KiB", style, kib(y.IdleRSSPer1k)))
			}
		}
		if s := r.realtime(maxClients, StyleStock); s != nil {
			got = append(got, fmt.Sprintf("stock PocketBase %.1f KiB", kib(s.IdleRSSPer1k)))
		}
		t := target{name: fmt.Sprintf("%s (RSS, %d clients)", memName, maxClients), goal: memGoal, got: strings.Join(got, ", "), met: boolp(worst <= targetIdleClientKiB)}
		if !*t.met {
			t.miss = over(worst, targetIdleClientKiB)
			t.profile = &profileRef{label: fmt.Sprintf("realtime-%d-%s-heap", maxClients, strings.ReplaceAll(StyleRoomTopics, " ", "-")), sampleIndex: "inuse_space",
				about: fmt.Sprintf("heap in use with %d idle clients connected (pbchat room topics)", maxClients)}
		}
		out = append(out, t)
	} else if c := r.capacityRun(false); c != nil && c.RSSPerClientKiB > 0 {
		t := target{name: fmt.Sprintf("%s (RSS, %d clients, capacity run)", memName, c.Held), goal: memGoal, got: fmt.Sprintf("pbchat room topics %.1f KiB", c.RSSPerClientKiB), met: boolp(c.RSSPerClientKiB <= targetIdleClientKiB)}
		if !*t.met {
			t.miss = over(c.RSSPerClientKiB, targetIdleClientKiB)
		}
		out = append(out, t)
	} else {
		out = append(out, notMeasured(memName, memGoal, ""))
	}

	cpuName, cpuGoal := "server CPU per delivered event (1,000-member room)", "≤ 10 µs"
	if x := r.realtime(maxClients, StyleRoomTopics); x != nil {
		worst, got := time.Duration(0), []string{}
		for _, style := range pbStyles {
			if y := r.realtime(maxClients, style); y != nil {
				worst = max(worst, y.Big.CPUPerDelivery)
				cell := fmt.Sprintf("%s %s µs", style, fus(y.Big.CPUPerDelivery))
				if m := marginalPerEvent(y); m > 0 {
					cell += fmt.Sprintf(" (marginal %s µs)", fus(m))
				}
				got = append(got, cell)
			}
		}
		if s := r.realtime(maxClients, StyleStock); s != nil {
			got = append(got, fmt.Sprintf("stock PocketBase %s µs", fus(s.Big.CPUPerDelivery)))
		}
		t := target{name: fmt.Sprintf("%s, %d clients", cpuName, maxClients), goal: cpuGoal, got: strings.Join(got, ", "), met: boolp(worst <= targetPerEvent)}
		if !*t.met {
			t.miss = over(float64(worst), float64(targetPerEvent)) + "; per message ÷ members, the message's insert included; marginal: (1,000-member room − 50-member room) ÷ the members between them"
			t.profile = &profileRef{label: fmt.Sprintf("realtime-%d-%s", maxClients, strings.ReplaceAll(StyleRoomTopics, " ", "-")),
				about: "the measured messages of the fan-out run, pbchat room topics (insert, fan-out, socket writes)"}
		}
		out = append(out, t)
	} else {
		out = append(out, notMeasured(cpuName, cpuGoal, ""))
	}

	oneName, oneGoal := "SSE clients held by one process (20,000 open files)", "≈ 19,500"
	if c := r.capacityRun(false); c != nil {
		t := target{name: oneName, goal: oneGoal, got: fmt.Sprintf("%d of %d", c.Held, c.Tried), met: boolp(c.Held >= targetOneProcess), miss: c.Note}
		if c.RSSPerClientKiB > 0 {
			t.got += fmt.Sprintf(", %.1f KiB each", c.RSSPerClientKiB)
		}
		if c.Tried < targetOneProcess && c.Held == c.Tried {
			t.met, t.miss = nil, joinNotes(fmt.Sprintf("not measured in this run: it tried %d", c.Tried), c.Note)
		} else if !*t.met {
			t.miss = joinNotes(short(float64(c.Held), targetOneProcess), c.Note)
			if c.Profile != "" {
				t.profile = &profileRef{label: c.Profile, about: "the capacity run, one process"}
			}
		}
		out = append(out, t)
	} else {
		why := ""
		if maxClients > 0 {
			why = fmt.Sprintf(" (the fan-out scenario went up to %d clients)", maxClients)
		}
		out = append(out, notMeasured(oneName, oneGoal, why))
	}

	clName, clGoal := "SSE clients held by a writer + 3 realtime nodes over NATS, 1,000-member room delivery p99 at that size", "50,000, p99 measured"
	if c := r.capacityRun(true); c != nil {
		got := fmt.Sprintf("%d of %d on %d nodes", c.Held, c.Tried, c.Nodes)
		if c.BigRoomP99 > 0 {
			got += fmt.Sprintf("; delivery p50 %s / p99 %s ms", fms(c.BigRoomP50), fms(c.BigRoomP99))
		}
		t := target{name: clName, goal: clGoal, got: got, met: boolp(c.Held >= targetCluster && c.BigRoomP99 > 0), miss: c.Note}
		if c.Tried < targetCluster && c.Held == c.Tried {
			t.met, t.miss = nil, joinNotes(fmt.Sprintf("not measured in this run: it tried %d", c.Tried), c.Note)
		} else if !*t.met {
			var why string
			if c.Held < targetCluster {
				why = short(float64(c.Held), targetCluster)
			}
			if c.BigRoomP99 == 0 {
				why = joinNotes(why, "delivery p99 not measured")
			}
			t.miss = joinNotes(why, c.Note)
			if c.Profile != "" {
				t.profile = &profileRef{label: c.Profile, about: "the capacity run, cluster"}
			}
		}
		out = append(out, t)
	} else {
		out = append(out, notMeasured(clName, clGoal, ""))
	}
	return out
}

func (r *Results) capacityRun(cluster bool) *CapacityRun {
	if r.Capacity == nil {
		return nil
	}
	if cluster {
		return r.Capacity.Cluster
	}
	return r.Capacity.Single
}

// largestSend is variant's result at concurrency 64 on the largest dataset.
func (r *Results) largestSend(variant string) *SendResult {
	if len(r.Sizes) == 0 {
		return nil
	}
	return r.send(r.Sizes[len(r.Sizes)-1].Dataset.Messages, 64, variant)
}

// RoundOneTargets are issue 5's targets (the first benchmarks), kept to
// show that round two did not give any of them up.
func (r *Results) RoundOneTargets() []target {
	var out []target
	if len(r.Sizes) > 0 {
		largest := r.Sizes[len(r.Sizes)-1]
		size := largest.Dataset.Messages
		if pb, hand := r.send(size, 64, SendPbchat), r.send(size, 64, SendHand); pb != nil && hand != nil {
			t := target{name: fmt.Sprintf("send, c=64, %s messages", sizeName(size)), goal: "≥ 1,500 msg/s", got: fmt.Sprintf("%.0f msg/s", pb.PerSecond), met: boolp(pb.PerSecond >= 1500)}
			if !*t.met {
				t.miss = short(pb.PerSecond, 1500)
			}
			out = append(out, t)
			cost := float64(pb.CPUPerMsg) / float64(hand.CPUPerMsg)
			t = target{name: "send cost per message vs hand-written rule (CPU, c=64)", goal: "≤ 1.30×", got: fmt.Sprintf("%.2f× (%s vs %s µs)", cost, fus(pb.CPUPerMsg), fus(hand.CPUPerMsg)), met: boolp(cost <= 1.3)}
			if !*t.met {
				t.miss = over(cost, 1.3)
			}
			out = append(out, t)
			wall := hand.PerSecond / pb.PerSecond
			t = target{name: "send wall time per message vs hand-written rule (c=64)", goal: "≤ 1.30×", got: fmt.Sprintf("%.2f×", wall), met: boolp(wall <= 1.3)}
			if !*t.met {
				t.miss = over(wall, 1.3)
			}
			out = append(out, t)
		}
		for _, what := range []string{"overview", "unread"} {
			if x := largest.read(what, "pbchat"); x != nil {
				t := target{name: fmt.Sprintf("%s p50, user in %d rooms, %s messages", what, FocusRooms, sizeName(size)), goal: "≤ 5 ms", got: fms(x.P50) + " ms", met: boolp(x.P50 <= 5*time.Millisecond)}
				if !*t.met {
					t.miss = over(ms(x.P50), 5)
				}
				out = append(out, t)
			}
		}
	}
	maxClients := 0
	for _, x := range r.Realtime {
		maxClients = max(maxClients, x.Config.Clients)
	}
	if maxClients > 0 {
		held := true
		for _, x := range r.Realtime {
			if x.Config.Clients == maxClients && (x.Connected < x.Config.Clients || x.Lost > 0) {
				held = false
			}
		}
		t := target{name: "SSE clients held in one process", goal: "10,000", got: fmt.Sprintf("%d in every style", maxClients)}
		switch {
		case !held:
			t.met, t.got = boolp(false), fmt.Sprintf("not all of %d connected and stayed", maxClients)
		case maxClients >= 10000:
			t.met = boolp(true)
		default:
			t.miss = "not measured in this run: it went up to " + strconv.Itoa(maxClients)
		}
		out = append(out, t)
		for _, style := range []string{StyleRoomTopics, StyleStockPbchat} {
			if x := r.realtime(maxClients, style); x != nil {
				t := target{name: fmt.Sprintf("1,000-member room, %d clients, %s: p99 until each member has it", maxClients, style), goal: "≤ 100 ms", got: fms(x.Big.DeliveryP99) + " ms (last member: p99 " + fms(x.Big.AllP99) + " ms)", met: boolp(x.Big.DeliveryP99 <= 100*time.Millisecond)}
				if !*t.met {
					t.miss = over(ms(x.Big.DeliveryP99), 100)
				}
				out = append(out, t)
			}
		}
	}
	if x, stock := r.realtime(5000, StyleRoomTopics), r.realtime(5000, StyleStock); x != nil {
		t := target{name: "50-member room among 5k clients, room topics: CPU per message", goal: "≤ 2 ms", got: fms(x.Small.CPUPerMessage) + " ms", met: boolp(x.Small.CPUPerMessage <= 2*time.Millisecond)}
		if !*t.met {
			t.miss = over(ms(x.Small.CPUPerMessage), 2)
		}
		out = append(out, t)
		if stock != nil {
			f := float64(stock.Small.CPUPerMessage) / float64(x.Small.CPUPerMessage)
			t := target{name: "same, cheaper than stock PocketBase by", goal: "≥ 300×", got: fmt.Sprintf("%.0f× (%s ms vs %s ms)", f, fms(stock.Small.CPUPerMessage), fms(x.Small.CPUPerMessage)), met: boolp(f >= 300)}
			if !*t.met {
				t.miss = short(f, 300)
			}
			out = append(out, t)
		}
	}
	return out
}

// metCell is a target's "met" column.
func (t target) metCell() string {
	if t.met == nil {
		if t.miss == "" {
			return "not measured in this run"
		}
		return t.miss
	}
	cell := map[bool]string{true: "yes", false: "**no**"}[*t.met]
	if t.miss != "" {
		cell += " (" + t.miss + ")"
	}
	return cell
}

// writeTargets renders issue 15's targets, the notes from the profiles of
// the missed ones, and issue 5's targets.
func (r *Results) writeTargets(p func(string, ...any)) {
	table := func(ts []target) {
		p("| target | goal | measured | met |\n|---|---|---|---|\n")
		for _, t := range ts {
			p("| %s | %s | %s | %s |\n", t.name, t.goal, t.got, t.metCell())
		}
		p("\n")
	}
	ts := r.Targets()
	p("### Targets (issue 15: performance, round two)\n\n")
	p("On this machine (%d cores), pbchat's figures with stock PocketBase and the SQLite floor of the same run in brackets. A target this run did not reach (a smaller dataset or client count, or a scenario left out) reads \"not measured in this run\".\n\n", r.Machine.CPUs)
	table(ts)

	var missed []target
	for _, t := range ts {
		if t.met != nil && !*t.met {
			missed = append(missed, t)
		}
	}
	if len(missed) > 0 {
		p("#### What remains: the profiles of the missed targets\n\n")
		p("The top functions by own time (`go tool pprof -top -nodecount=%d`) of the profile of the scenario that measured each missed target; `cum` counts the functions it calls too.\n\n", profileTopN)
		for _, t := range missed {
			p("- **%s**: %s.", t.name, t.miss)
			if t.profile == nil {
				p(" No profile covers it.\n")
				continue
			}
			note, ok := r.ProfileNotes[t.profile.key()]
			if !ok {
				note = profileNote{file: t.profile.label + ".pprof", err: "Profile not read"}
			}
			filter := ""
			if t.profile.focus != "" {
				filter = fmt.Sprintf(", `-focus=%s`", t.profile.focus)
			}
			if t.profile.sampleIndex != "" {
				filter += fmt.Sprintf(", `-sample_index=%s`", t.profile.sampleIndex)
			}
			p(" Profile `%s`%s: %s.", note.file, filter, t.profile.about)
			if note.err != "" {
				p(" %s.\n", note.err)
				continue
			}
			if note.summary != "" {
				p(" %s.", note.summary)
			}
			p("\n\n  ```\n")
			for _, row := range note.rows {
				p("  %s\n", row)
			}
			p("  ```\n")
		}
		p("\n")
	}

	if r1 := r.RoundOneTargets(); len(r1) > 0 {
		p("### Targets of round one (issue 5)\n\n")
		table(r1)
	}
}

// marginalPerEvent is the CPU one more member costs: the two rooms'
// difference per message over the difference in members, which leaves the
// insert and hooks out (0 when the run cannot tell).
func marginalPerEvent(x *RealtimeResult) time.Duration {
	members := x.Big.Members - x.Small.Members
	if members <= 0 || x.Big.CPUPerMessage <= x.Small.CPUPerMessage {
		return 0
	}
	return (x.Big.CPUPerMessage - x.Small.CPUPerMessage) / time.Duration(members)
}
