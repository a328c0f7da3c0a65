// The room list (left column): the caller's rooms from GET /api/chat/rooms,
// kept live by the stock subscriptions to chat_messages, chat_room_users and
// chat_rooms (the server delivers only events of the caller's rooms) and by
// the events GET /api/chat/sync returns after a reconnect (sync.js).
import { pb, myId, loadUsers, userById, displayName, rememberUser, fileToken } from "./pb.js";
import { h, icon, avatar, userAvatar, shortTime, parseDate, showError } from "./dom.js";
import { live } from "./sync.js";

const PER_PAGE = 50;
const items = new Map(); // room id → { room, membership, unread_count, last_message, peer }
const listeners = new Set();
let pages = 1;
let totalPages = 1;
let openId = null;
let filterText = "";
let listEl = null;
let loadSeq = 0;
let arrived = null; // messages created while a reload is in flight

export const roomItem = (id) => items.get(id);
export const onRoomsChange = (fn) => listeners.add(fn);

/** Which room the right-hand side shows (unread counts stay 0 there while the page is visible). */
export function setOpenRoom(id) {
    openId = id;
    render();
}

const isWatching = (roomId) => roomId === openId && document.visibilityState === "visible";

/** The name a room goes by: its own, or the other person's in a private chat. */
export function roomTitle(room, peer) {
    if (room?.type === "private_messages") return peer ? displayName(peer) : "Private chat";
    return room?.name || (room?.type === "channel" ? "Untitled channel" : "Untitled group");
}

export function roomAvatar(room, peer, size = "") {
    if (room?.type === "private_messages" && peer) return userAvatar(peer, size);
    const el = avatar(roomTitle(room, peer), room?.id, "", size);
    if (room?.avatar) {
        // A room's avatar is a protected file (members, or anyone signed in for
        // a public room): its URL needs a file token. The initials show until then.
        fileToken()
            .then((token) => el.replaceChildren(h("img", { src: pb.files.getURL(room, room.avatar, { thumb: "100x100", token }), alt: "", loading: "lazy" })))
            .catch(() => {}); // no token (signed out, offline): the initials stay
    }
    return el;
}

// ---- loading ------------------------------------------------------------------

/** (Re)loads every page loaded so far, in one request. */
export async function loadRooms() {
    const seq = ++loadSeq;
    arrived ??= [];
    let res;
    try {
        res = await pb.send("/api/chat/rooms", { query: { page: 1, perPage: PER_PAGE * pages } });
    } catch (err) {
        if (seq === loadSeq) arrived = null;
        throw err;
    }
    if (seq !== loadSeq) return; // a newer load is on its way; it applies its answer
    totalPages = Math.ceil(res.totalItems / PER_PAGE) || 1;
    const previous = new Map(items);
    items.clear();
    for (const item of res.items) {
        item.peer = previous.get(item.room.id)?.peer ?? null;
        items.set(item.room.id, item);
    }
    // Messages that arrived while the answer travelled: count those it does not know.
    const replay = arrived;
    arrived = null;
    replay.forEach(messageCreated);
    render();
    await completeItems(res.items);
    render();
}

async function loadMoreRooms() {
    if (pages >= totalPages) return;
    pages++;
    const res = await pb.send("/api/chat/rooms", { query: { page: pages, perPage: PER_PAGE } });
    totalPages = res.totalPages || totalPages;
    res.items.forEach((item) => items.set(item.room.id, item));
    await completeItems(res.items);
    render();
}

// Private chats show the other person; last messages show their author.
async function completeItems(list) {
    const privateIds = list.filter((i) => i.room.type === "private_messages" && !i.peer).map((i) => i.room.id);
    if (privateIds.length) {
        const filter = pb.filter("user != {:me}", { me: myId() }) + " && (" +
            privateIds.map((id, n) => pb.filter(`room = {:r${n}}`, { [`r${n}`]: id })).join(" || ") + ")";
        const others = await pb.collection("chat_room_users").getFullList({ filter, expand: "user", batch: 200 });
        for (const m of others) {
            rememberUser(m.expand?.user);
            const item = items.get(m.room);
            if (item) item.peer = m.expand?.user ?? userById(m.user);
        }
    }
    await loadUsers(list.map((i) => i.last_message?.user));
}

let refreshTimer = null;
/** Reloads the list soon (several events in a row cost one request). */
export function refreshRoomsSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => loadRooms().catch((err) => showError(err, "Could not load your rooms")), 150);
}

// ---- read state -------------------------------------------------------------

/** POST /api/chat/rooms/{id}/read and clear the badge. */
export async function markRead(roomId) {
    const item = items.get(roomId);
    if (item && item.unread_count === 0 && item.readOnce) return;
    try {
        const membership = await pb.send(`/api/chat/rooms/${encodeURIComponent(roomId)}/read`, { method: "POST" });
        const current = items.get(roomId);
        if (current) {
            current.unread_count = 0;
            current.unread_mentions = 0;
            current.readOnce = true;
            if (membership?.id) current.membership = membership;
            render();
        }
    } catch (err) {
        showError(err, "Could not mark the room as read");
    }
}

export function updateMembership(membership) {
    const item = items.get(membership.room);
    if (item && !(item.membership?.updated > membership.updated)) { // an older copy arriving late changes nothing
        item.membership = membership;
        render();
    }
}

// ---- live updates -----------------------------------------------------------

/** A new message: last message and unread count, unless the list knows it already. */
function messageCreated(record) {
    const item = items.get(record.room);
    if (!item) return false;
    const last = item.last_message;
    if (last && (last.id === record.id || last.created > record.created)) return true;
    item.last_message = { id: record.id, user: record.user, text: record.text, created: record.created };
    if (record.user !== myId()) {
        if (isWatching(record.room)) item.readOnce = false;
        else {
            item.unread_count++;
            if ((record.mentions ?? []).includes(myId())) item.unread_mentions = (item.unread_mentions ?? 0) + 1;
        }
    }
    return true;
}

// What each collection's change does to the list. Realtime events (stock
// subscriptions, {action, record}) and sync events ({collection, action,
// record}) come through here alike; applying one twice changes nothing.
// Deletes from sync are tombstones: {id, room, collectionName} (plus user or message).
const onChange = {
    chat_messages(action, record) {
        if (action === "create") {
            arrived?.push(record);
            if (!messageCreated(record)) refreshRoomsSoon(); // a room we were just added to
            loadUsers([record.user]).then(render);
        } else if (action === "update") {
            const item = items.get(record.room);
            if (item?.last_message?.id === record.id) item.last_message.text = record.text;
        } else if (action === "delete") {
            refreshRoomsSoon(); // the last message and the unread count may both change
        }
        render();
    },
    chat_room_users(action, record) {
        const mine = record.user === myId() || (action === "delete" && items.get(record.room)?.membership?.id === record.id);
        if (!mine) return;
        if (action === "create") refreshRoomsSoon();
        else if (action === "update") updateMembership(record);
        else if (action === "delete" && items.delete(record.room)) render();
    },
    chat_rooms(action, record) {
        const item = items.get(record.id);
        if (action === "delete") {
            if (items.delete(record.id)) render();
        } else if (item) {
            if (!(item.room?.updated > record.updated)) item.room = record;
            render();
        } else if (action === "create") {
            refreshRoomsSoon();
        }
    },
};

/** Applies one event of GET /api/chat/sync. */
export function applyToRooms({ collection, action, record }) {
    if (record) onChange[collection]?.(action, record);
}

/** Follows the stock subscriptions; their events wait while the page catches up (sync.js). */
export function subscribeRooms() {
    return Promise.all(Object.entries(onChange).map(([collection, apply]) =>
        pb.collection(collection).subscribe("*", live(({ action, record }) => record && apply(action, record)))));
}

// ---- rendering --------------------------------------------------------------

function activity(item) {
    return item.last_message?.created > item.membership?.created ? item.last_message.created : item.membership?.created ?? "";
}

function preview(item) {
    const last = item.last_message;
    if (!last) return item.room.description || "No messages yet";
    const text = last.text?.trim() ? last.text.replace(/\s+/g, " ") : "📷 Picture";
    if (last.user === myId()) return `You: ${text}`;
    if (item.room.type === "private_messages") return text;
    return `${displayName(userById(last.user))}: ${text}`;
}

/** Unread messages of rooms that are not muted, for the page title. */
export function totalUnread() {
    let n = 0;
    for (const item of items.values()) if (!item.membership?.muted) n += item.unread_count;
    return n;
}

export function roomListElement() {
    listEl = h("nav.room-list", { "aria-label": "Your rooms" });
    listEl.addEventListener("scroll", () => {
        if (listEl.scrollTop + listEl.clientHeight > listEl.scrollHeight - 120) {
            loadMoreRooms().catch((err) => showError(err, "Could not load more rooms"));
        }
    });
    render();
    return listEl;
}

export function setRoomFilter(text) {
    filterText = text.trim().toLowerCase();
    render();
}

function render() {
    listeners.forEach((fn) => fn());
    if (!listEl) return;
    const sorted = [...items.values()].sort((a, b) => activity(b).localeCompare(activity(a)));
    const shown = sorted.filter((i) => !filterText || roomTitle(i.room, i.peer).toLowerCase().includes(filterText));
    const rows = shown.map((item) => {
        const { room, membership } = item;
        const unread = item.unread_count > 0 && room.id !== openId;
        const muted = !!membership?.muted;
        const title = roomTitle(room, item.peer);
        return h(`a.room-item${room.id === openId ? ".active" : ""}${unread ? ".unread" : ""}`,
            { href: `#/room/${room.id}`, "data-room": room.id, "aria-current": room.id === openId ? "page" : null },
            roomAvatar(room, item.peer),
            h("div.room-text",
                h("div.room-line",
                    h("span.room-name",
                        room.type === "channel" ? icon("megaphone", "Channel") : null,
                        h("span.room-name-text", title)),
                    h("time.room-time", shortTime(parseDate(item.last_message?.created)))),
                h("div.room-line",
                    h("span.room-preview", preview(item)),
                    muted ? icon("bellOff", "Muted") : null,
                    unread && item.unread_mentions > 0 ? h("span.badge.mention-badge", { "aria-label": `${item.unread_mentions} mentioning you`, title: "You were mentioned" }, "@") : null,
                    unread ? h(`span.badge${muted ? ".muted" : ""}`, { "aria-label": `${item.unread_count} unread` }, String(item.unread_count)) : null)));
    });
    if (!rows.length) {
        rows.push(h("p.list-empty", items.size ? "No room matches." : "No conversations yet. Start one with the + button, or join a public room."));
    }
    listEl.replaceChildren(...rows);
}
