// Nothing is missed. The page keeps the event log's cursor — from every
// realtime event and every sync answer, saved in localStorage per user — and
// after every realtime connect (PB_CONNECT, the first one too) asks
// GET /api/chat/sync what happened since the cursor, applies it to the room
// list and the open room, and only then lets through the realtime events
// that arrived meanwhile. While the realtime connection is down, a status
// line says so.
import { pb, myId } from "./pb.js";
import { h, showError } from "./dom.js";

const PAGE = 200; // events per sync request
const MAX_PAGES = 25; // further behind than this: reload rather than replay
const OFFLINE_AFTER = 1000; // ms without a connection before the page says it is offline (a routine reconnect takes less)
const RETRY = 2000; // ms before a catch-up that failed on the network is tried again

let cursor = "";
let hooks = null; // { apply(event), reload(), suspend(), resume() } from main.js
let holding = true; // realtime events wait while the page catches up (and until the first catch-up)
let held = []; // [callback, event]
let stale = false; // the next catch-up reloads everything (the first load failed)
let started = false; // the first catch-up is done
let running = null; // the catch-up in progress
let again = false; // another PB_CONNECT came while it ran
let statusEl = null;
let offlineTimer = null;

const storageKey = () => `pbchat.cursor.${myId()}`;

function setCursor(value) {
    if (!value) return;
    cursor = value;
    try {
        localStorage.setItem(storageKey(), value);
    } catch {
        // private mode or full: the cursor lives as long as the page
    }
}

/** GET /api/chat/sync: { cursor, more, reset, events: [{ cursor, type, room, collection, action, record }] }. */
const fetchSync = (since) => pb.send("/api/chat/sync", { query: since ? { since, limit: PAGE } : {} });

/**
 * The cursor to resume from: the one this user's last visit left, or else a
 * starting point taken now. Call before the rooms load, so that nothing
 * written between the load and the first sync is missed.
 */
export async function initCursor() {
    try {
        cursor = localStorage.getItem(storageKey()) ?? "";
    } catch {
        cursor = "";
    }
    if (!cursor) setCursor((await fetchSync()).cursor);
}

/** The next catch-up reloads the rooms (their first load failed). */
export function markStale() {
    stale = true;
}

/**
 * Wraps a realtime callback: the event's cursor is kept, and while the page
 * catches up the event waits (typing, which is not logged, does not).
 */
export function live(callback) {
    return (e) => {
        if (holding && e?.type !== "typing") held.push([callback, e]);
        else deliver(callback, e);
    };
}

function deliver(callback, e) {
    setCursor(e?.cursor);
    try {
        callback(e);
    } catch (err) {
        console.error("pbchat: applying a realtime event", err);
    }
}

/**
 * Follows the realtime connection: on every PB_CONNECT the page catches up;
 * on a disconnect it suspends (room topics are dropped, so that a room the
 * user was removed from meanwhile cannot fail the SDK's resubscription) and,
 * unless the connection is back within a second, shows that it is offline.
 */
export function followConnection(appHooks) {
    hooks = appHooks;
    pb.realtime.onDisconnect = (active) => {
        if (active.length) disconnected(); // none: the page unsubscribed (sign-out)
    };
    return pb.realtime.subscribe("PB_CONNECT", () => {
        clearTimeout(offlineTimer);
        setOffline(false);
        catchUp();
    });
}

function disconnected() {
    holding = true;
    hooks?.suspend();
    clearTimeout(offlineTimer);
    offlineTimer = setTimeout(() => setOffline(true), OFFLINE_AFTER);
}

/** Runs a catch-up now, or once more after the one in progress. */
export function catchUp() {
    if (running) {
        again = true;
        return running;
    }
    running = (async () => {
        do {
            again = false;
            await catchUpOnce();
        } while (again);
    })().finally(() => (running = null));
    return running;
}

async function catchUpOnce() {
    holding = true;
    const applied = new Set(); // cursors of events the sync applied: their realtime copies are skipped
    try {
        await hooks.resume();
        if (stale || (!cursor && started)) {
            await reloadAll();
        } else if (!cursor) {
            setCursor((await fetchSync()).cursor); // first start: the rooms were loaded just now
        } else {
            for (let page = 1; ; page++) {
                const res = await fetchSync(cursor);
                if (res.reset) {
                    // Too old, or another database (a restored backup): reload, go on from the cursor given.
                    setCursor(res.cursor);
                    await hooks.reload();
                    break;
                }
                for (const event of res.events ?? []) {
                    applied.add(event.cursor);
                    try {
                        hooks.apply(event);
                    } catch (err) {
                        console.error("pbchat: applying a sync event", event, err);
                    }
                }
                setCursor(res.cursor);
                if (!res.more) break;
                if (page >= MAX_PAGES) {
                    await reloadAll();
                    break;
                }
            }
        }
    } catch (err) {
        if (err?.status === 0) {
            // The network failed under us. A new PB_CONNECT catches up if the connection
            // dropped; if not, try again soon. Meanwhile the realtime events keep waiting.
            setTimeout(() => pb.realtime.isConnected && catchUp(), RETRY);
            return;
        }
        // The server could not sync (or has no sync route): a full reload is the way to catch up.
        console.error("pbchat: sync failed, reloading", err);
        try {
            await hooks.reload();
            stale = false;
        } catch (reloadErr) {
            showError(reloadErr, "Could not reload your rooms");
        }
    }
    started = true;
    const list = held;
    held = [];
    holding = false;
    for (const [callback, e] of list) {
        if (e?.cursor && applied.has(e.cursor)) continue;
        deliver(callback, e);
    }
}

/** A fresh starting point, then everything loaded again after it. */
async function reloadAll() {
    setCursor((await fetchSync()).cursor);
    await hooks.reload();
    stale = false;
}

// ---- the offline status --------------------------------------------------------

/** The status line: always in the page (a live region), empty while connected. */
export function connectionStatus() {
    statusEl = h("div.connection", { role: "status" });
    return statusEl;
}

/** Shows or clears the offline status. */
export function setOffline(offline) {
    if (!statusEl) return;
    statusEl.replaceChildren(...(offline
        ? [h("span.connection-pill", h("span.connection-dot", { "aria-hidden": "true" }), "You are offline. Reconnecting…")]
        : []));
}
