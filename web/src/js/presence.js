// Presence: who of the people I share a room with is online, and when the
// others were last online. The state comes from GET /api/chat/presence after
// every realtime connect (the first one too) and changes live through the
// chat/presence topic (presence.online / presence.offline events). Elements
// made here (a green dot, "online" / "last seen …", "N online") update
// themselves while they are in the page.
import { pb, myId } from "./pb.js";
import { h, parseDate, shortTime } from "./dom.js";

const state = new Map(); // user id → { online, last_online }
const live = new Set(); // elements that follow the state: { el, users, paint }

/** Subscribes to chat/presence and loads the state on every connect. */
export async function startPresence() {
    await Promise.all([
        pb.realtime.subscribe("chat/presence", (e) => {
            const { user, online, last_online } = e.record ?? {};
            if (!user) return;
            state.set(user, { online: !!online, last_online: last_online ?? "" });
            repaint(user);
        }),
        pb.realtime.subscribe("PB_CONNECT", () => refresh()),
    ]);
    await refresh(); // connected before the PB_CONNECT listener was there
}

/** Loads everyone's presence (what changed while disconnected included). */
async function refresh() {
    try {
        const { users } = await pb.send("/api/chat/presence", { method: "GET" });
        state.clear();
        for (const [id, s] of Object.entries(users ?? {})) state.set(id, s);
        repaint();
    } catch (err) {
        console.error("pbchat: presence", err);
    }
}

const isOnline = (id) => !!state.get(id)?.online;

function lastSeen(id) {
    const s = state.get(id);
    if (!s) return "";
    if (s.online) return "online";
    const at = parseDate(s.last_online);
    return at ? `last seen ${shortTime(at)}` : "";
}

function follow(el, users, paint) {
    const entry = { el, users: new Set(users), paint };
    live.add(entry);
    paint(el);
    return el;
}

function repaint(user) {
    for (const entry of live) {
        if (!entry.el.isConnected && entry.painted) {
            live.delete(entry); // left the page
            continue;
        }
        entry.painted = entry.painted || entry.el.isConnected;
        if (!user || entry.users.has(user)) entry.paint(entry.el);
    }
}

/** A dot, green while the user is online. */
export function presenceDot(userId) {
    return follow(h("span.presence-dot", { "aria-hidden": "true" }), [userId], (el) => {
        el.classList.toggle("online", isOnline(userId));
        el.title = lastSeen(userId);
    });
}

/** "online", "last seen 14:05" or nothing. */
export function presenceLabel(userId) {
    return follow(h("span.presence-label"), [userId], (el) => {
        const text = lastSeen(userId);
        el.textContent = text ? ` · ${text}` : "";
        el.classList.toggle("online", isOnline(userId));
    });
}

/** " · N online" of users other than me, or nothing. */
export function presenceCount(userIds) {
    const others = [...userIds].filter((id) => id !== myId());
    return follow(h("span.presence-label"), others, (el) => {
        const n = others.filter(isOnline).length;
        el.textContent = n ? ` · ${n} online` : "";
    });
}
