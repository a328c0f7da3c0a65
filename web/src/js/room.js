// The open room (right column): header, timeline with older pages on
// scroll, composer with picture upload, reactions, edit and delete, typing.
// Live through the room topic `chat/rooms/{id}`, and through the events
// GET /api/chat/sync returns after a reconnect (sync.js).
import { pb, myId, userById, displayName, loadUsers, rememberUser, fileToken, mediaURL, errorText } from "./pb.js";
import { h, icon, iconButton, userAvatar, clockTime, shortTime, dayLabel, parseDate, showError, toast, modal } from "./dom.js";
import { roomItem, roomTitle, roomAvatar, markRead, setOpenRoom, refreshRoomsSoon, updateMembership } from "./rooms.js";
import { can, canPost, canEditMessage, canDeleteMessage } from "./permissions.js";
import { openRoomInfo } from "./dialogs.js";
import { live } from "./sync.js";
import { presenceLabel, presenceCount } from "./presence.js";
import { reportDialog } from "./moderation.js";
import { loadThreads, openThreadsView } from "./threads.js";

const PAGE = 30;
const EXPAND = "chat_message_media_via_message.media,chat_message_reactions_via_message,reply_to";
const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "🔥"];

let view = null; // the open room; replaced whenever another room opens
let pane = null; // the element the room renders into

export function mountRoomPane(el) {
    pane = el;
    showPlaceholder();
}

function showPlaceholder() {
    pane.replaceChildren(h("div.placeholder",
        h("div.placeholder-icon", icon("chat")),
        h("h2", "Pick a conversation"),
        h("p", "Choose a room on the left, or start a new chat with the + button.")));
}

export function closeRoom() {
    view?.unsubscribe?.();
    view = null;
    setOpenRoom(null);
    document.body.classList.remove("room-open");
    if (pane) showPlaceholder();
}

// ---- opening ----------------------------------------------------------------

export async function openRoom(id) {
    if (view?.id === id) return;
    closeRoom();
    const v = (view = {
        id, room: roomItem(id)?.room ?? null, membership: roomItem(id)?.membership ?? null,
        members: new Map(), messages: new Map(), order: [], nodes: new Map(),
        hasMore: true, loadingOlder: false, stick: true, typing: new Map(), token: "", pending: [],
        // Events may come twice (realtime and sync) and late: what was deleted stays deleted,
        // and an edit that overtakes its message's first load is kept for it.
        deleted: new Set(), deletedReactions: new Set(), edits: new Map(),
        replyTo: null, thread: null, mentionIds: new Map(), focusId: null, newBelow: false,
        // The caller's threads and their unread replies, as loaded before the room is marked read.
        myThreads: new Set(), threadUnread: new Map(), counted: new Set(),
    });
    setOpenRoom(id);
    document.body.classList.add("room-open");
    pane.replaceChildren(h("div.room-loading", "Loading…"));

    try {
        const [room, membership] = await Promise.all([
            pb.collection("chat_rooms").getOne(id),
            v.membership ?? pb.collection("chat_room_users")
                .getFirstListItem(pb.filter("room = {:room} && user = {:me}", { room: id, me: myId() }))
                .catch((err) => (err.status === 404 ? null : Promise.reject(err))),
        ]);
        if (view !== v) return;
        v.room = room;
        v.membership = membership;
        if (!membership) return renderJoin(v);
        v.lastSeen = membership.last_seen_at ?? ""; // where "New messages" begins, fixed while the room is open
        // Follow the room first and hold its events until the history is in,
        // so nothing sent meanwhile is missed.
        v.queue = [];
        await follow(v);
        if (view !== v) return;
        await Promise.all([loadMembers(v), loadPage(v), fileToken().then((t) => (v.token = t)), loadThreadCounts(v)]);
        if (view !== v) return;
        await loadReceipts(v);
        if (view !== v) return;
        v.firstUnread = v.order.map((id) => v.messages.get(id))
            .find((m) => !m.thread && !m.system && m.user !== myId() && (!v.lastSeen || m.created > v.lastSeen))?.id ?? null;
        renderRoom(v);
        const queued = v.queue;
        v.queue = null;
        queued.forEach((e) => onEvent(v, e));
        markRead(id);
    } catch (err) {
        if (view !== v) return;
        pane.replaceChildren(h("div.placeholder",
            h("h2", err.status === 404 ? "Room not found" : "Could not open the room"),
            h("p", err.status === 404 ? "It does not exist, or you are not a member of it." : errorText(err)),
            h("a.button", { href: "#/" }, "Back to your rooms")));
    }
}

/** Subscribes to the room topic; events wait in v.queue while the history loads. */
async function follow(v) {
    const unsubscribe = await pb.realtime.subscribe(`chat/rooms/${v.id}`, live((e) => (v.queue ? v.queue.push(e) : onEvent(v, e))));
    if (view !== v) return unsubscribe();
    v.unsubscribe = unsubscribe;
}

/**
 * The realtime connection dropped: forget the room topic. The SDK would
 * subscribe to it again on reconnect, and if the user was removed from the
 * room meanwhile, that refused subscription would fail the whole reconnect.
 */
export function suspendRoom() {
    if (!view?.unsubscribe) return;
    view.unsubscribe().catch(() => {}); // disconnected: nothing is sent
    view.unsubscribe = null;
    view.suspended = true;
}

/** Back online, before the catch-up: follow the room topic again (its events wait for the sync). */
export async function resumeRoom() {
    const v = view;
    if (!v?.suspended) return;
    v.suspended = false;
    try {
        await follow(v);
    } catch (err) {
        // Refused: no longer a member. Drop the topic, or every later subscription
        // change would repeat it; the sync's member.left (or a reload) closes the room.
        await pb.realtime.unsubscribe(`chat/rooms/${v.id}`).catch(() => {});
        if (err?.status !== 403 && err?.status !== 404) {
            console.error("pbchat: resubscribing the room", err);
            v.suspended = true; // try again on the next connect
        }
    }
}

/** Applies one event of GET /api/chat/sync to the open room, if it is that room's. */
export function applyToRoom(event) {
    const v = view;
    if (!v || event.room !== v.id || !event.type) return;
    if (!v.membership) {
        // The join panel: added meanwhile? Open the room as a member.
        if (event.type === "member.joined" && event.record?.user === myId()) reopenRoom();
        return;
    }
    if (v.queue) v.queue.push(event);
    else onEvent(v, event);
}

async function loadMembers(v) {
    const list = await pb.collection("chat_room_users").getFullList({
        filter: pb.filter("room = {:room}", { room: v.id }), expand: "user", batch: 500,
    });
    v.members.clear();
    for (const m of list) {
        rememberUser(m.expand?.user);
        v.members.set(m.user, m);
    }
}

/** The caller's threads here and their unread replies; none on a server without threads. */
async function loadThreadCounts(v) {
    try {
        for (const { root, unread } of await loadThreads(v.id)) {
            v.myThreads.add(root.id);
            if (unread > 0) v.threadUnread.set(root.id, unread);
        }
    } catch (err) {
        if (err?.status !== 404) console.warn("pbchat: threads not loaded", err?.response ?? err);
    }
}

/** A reply by someone else in one of the caller's threads that is not open: one more unread. */
function countThreadReply(v, record) {
    const root = record.thread;
    if (!root || record.user === myId() || v.thread?.root.id === root || v.messages.has(record.id) || v.counted.has(record.id)) return;
    if (!v.myThreads.has(root) && v.messages.get(root)?.user !== myId() && !(record.mentions ?? []).includes(myId())) return;
    v.counted.add(record.id); // realtime and sync may both bring it
    v.myThreads.add(root);
    v.threadUnread.set(root, (v.threadUnread.get(root) ?? 0) + 1);
    renderHeader(v);
}

/** Who read how far: GET /api/chat/rooms/{id}/receipts, else the memberships' last_seen_at as loaded. */
async function loadReceipts(v) {
    try {
        const res = await pb.send(`/api/chat/rooms/${encodeURIComponent(v.id)}/receipts`, {});
        for (const r of res?.items ?? []) {
            const m = v.members.get(r.user);
            if (m && r.last_seen_at && !(m.last_seen_at > r.last_seen_at)) v.members.set(r.user, { ...m, last_seen_at: r.last_seen_at });
        }
    } catch {
        // An older server: the memberships carry last_seen_at too.
    }
}

/** One page of messages older than the oldest loaded (newest first from the server). */
async function loadPage(v) {
    const oldest = v.messages.get(v.order[0]);
    const filter = oldest
        ? pb.filter("room = {:room} && (created < {:c} || (created = {:c} && id < {:id}))", { room: v.id, c: oldest.created, id: oldest.id })
        : pb.filter("room = {:room}", { room: v.id });
    const res = await pb.collection("chat_messages").getList(1, PAGE, { filter, sort: "-created,-id", expand: EXPAND, skipTotal: true });
    await loadUsers(res.items.map((m) => m.user));
    for (const record of res.items) {
        const m = toMessage(record);
        if (v.messages.has(m.id)) continue;
        v.messages.set(m.id, m);
        v.order.unshift(m.id);
    }
    v.hasMore = res.items.length === PAGE;
}

async function loadOlder(v) {
    if (v.loadingOlder || !v.hasMore) return;
    v.loadingOlder = true;
    paintTop(v);
    const timeline = v.els.timeline;
    const fromBottom = timeline.scrollHeight - timeline.scrollTop;
    try {
        await loadPage(v);
        v.token = await fileToken();
    } catch (err) {
        showError(err, "Could not load older messages");
    } finally {
        v.loadingOlder = false;
    }
    if (view !== v) return;
    paint(v);
    timeline.scrollTop = timeline.scrollHeight - fromBottom;
}

/** A message record with its pictures (by sequence) and reactions unpacked. */
function toMessage(record) {
    const links = record.expand?.chat_message_media_via_message ?? [];
    return {
        ...record,
        parent: record.expand?.reply_to ?? null,
        media: links.slice().sort((a, b) => a.sequence - b.sequence).map((l) => l.expand?.media).filter(Boolean),
        reactions: record.expand?.chat_message_reactions_via_message ?? [],
    };
}

// One request per message even when the create response and the realtime
// event both announce it.
const fetching = new Map();
function fetchMessage(id) {
    if (!fetching.has(id)) {
        fetching.set(id, pb.collection("chat_messages").getOne(id, { expand: EXPAND })
            .then(toMessage).finally(() => fetching.delete(id)));
    }
    return fetching.get(id);
}

async function addMessage(v, id) {
    if (v.messages.has(id) || v.deleted.has(id)) return;
    let m = await fetchMessage(id);
    await loadUsers([m.user, m.system_data?.user, m.system_data?.by]);
    if (m.media.length) v.token = await fileToken();
    if (view !== v || v.messages.has(id) || v.deleted.has(id)) return;
    const edit = v.edits.get(id);
    v.edits.delete(id);
    if (edit && isOlder(m, edit)) m = { ...m, text: edit.text, edited_at: edit.edited_at, updated: edit.updated };
    v.messages.set(id, m);
    // Usually the newest; keep (created, id) order all the same.
    let i = v.order.length;
    while (i > 0 && compare(v.messages.get(v.order[i - 1]), m) > 0) i--;
    v.order.splice(i, 0, id);
    clearTyping(v, m.user);
    if (!v.stick && !m.thread && m.user !== myId()) v.newBelow = true;
    paint(v);
}

/** What a message.updated event may change: the text, the pin, the thread's count. */
function liveFields(record) {
    const out = { text: record.text, edited_at: record.edited_at, updated: record.updated };
    for (const k of ["pinned_at", "pinned_by", "thread_count", "thread_last_reply_at", "mentions"]) if (k in record) out[k] = record[k];
    return out;
}

const compare = (a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id);
/** Whether record a is an older version than b (PocketBase's `updated`). */
const isOlder = (a, b) => !!a?.updated && !!b?.updated && a.updated < b.updated;

// ---- realtime -----------------------------------------------------------------

function onEvent(v, { type, record }) {
    if (view !== v || !record) return;
    switch (type) {
        case "message.created":
            if (v.deleted.has(record.id)) break;
            countThreadReply(v, record);
            addMessage(v, record.id)
                .then(() => record.user !== myId() && document.visibilityState === "visible" && readSoon(v))
                .catch((err) => err?.status !== 404 && showError(err, "Could not load a new message")); // 404: deleted since
            break;
        case "message.updated": {
            const m = v.messages.get(record.id);
            if (m && !isOlder(record, m)) updateMessage(v, { ...m, ...liveFields(record) });
            else if (!m && !v.deleted.has(record.id) && !isOlder(record, v.edits.get(record.id))) v.edits.set(record.id, record);
            break;
        }
        case "message.deleted":
            v.deleted.add(record.id);
            v.edits.delete(record.id);
            removeMessage(v, record.id);
            break;
        case "reaction.created": {
            const m = v.messages.get(record.message);
            if (!m || v.deletedReactions.has(record.id) || m.reactions.some((r) => r.id === record.id)) break;
            updateMessage(v, { ...m, reactions: [...m.reactions, record] });
            break;
        }
        case "reaction.deleted": {
            v.deletedReactions.add(record.id);
            // A tombstone names no message: find the one holding the reaction.
            const m = v.messages.get(record.message) ?? [...v.messages.values()].find((x) => x.reactions.some((r) => r.id === record.id));
            if (m?.reactions.some((r) => r.id === record.id)) updateMessage(v, { ...m, reactions: m.reactions.filter((r) => r.id !== record.id) });
            break;
        }
        case "member.joined":
        case "member.updated":
            onMember(v, record, false);
            break;
        case "member.left": {
            // A tombstone names the membership, not the user.
            const user = record.user ??
                (v.membership?.id === record.id ? myId() : [...v.members.values()].find((m) => m.id === record.id)?.user);
            if (user) onMember(v, { ...record, user }, true);
            break;
        }
        case "room.updated":
            if (isOlder(record, v.room)) break;
            v.room = record;
            renderHeader(v);
            break;
        case "room.deleted":
            toast(`“${roomTitle(v.room, peerOf(v))}” was deleted.`);
            location.hash = "#/";
            break;
        case "typing":
            if (record.user !== myId()) showTyping(v, record.user);
            break;
    }
}

async function onMember(v, record, left) {
    const seenBefore = v.members.get(record.user)?.last_seen_at;
    if (left) v.members.delete(record.user);
    else {
        if (isOlder(record, v.members.get(record.user))) return;
        await loadUsers([record.user]);
        v.members.set(record.user, record);
    }
    if (view !== v) return;
    if (record.user !== myId() && record.last_seen_at !== seenBefore) paint(v); // "Seen by" follows
    if (record.user === myId()) {
        if (left) {
            toast(`You are no longer a member of “${roomTitle(v.room, peerOf(v))}”.`);
            refreshRoomsSoon();
            location.hash = "#/";
            return;
        }
        const before = [...(v.membership?.permissions ?? [])].sort().join();
        const composerBefore = composerState(v.membership);
        v.membership = record;
        updateMembership(record);
        // Reading the room updates last_seen_at too: redraw only what changed
        // (the composer keeps what is being typed and its pickers otherwise).
        if (composerState(record) !== composerBefore) renderComposer(v);
        if ([...(record.permissions ?? [])].sort().join() !== before) {
            v.nodes.clear(); // which actions each message offers may have changed
            paint(v);
        }
    }
    renderHeader(v);
}

function updateMessage(v, m) {
    const editorFocused = document.activeElement?.classList.contains("edit-input");
    v.messages.set(m.id, m);
    v.nodes.delete(m.id);
    paint(v);
    if (editorFocused && v.editing?.id === m.id) focusEditor(v);
}

function removeMessage(v, id) {
    if (!v.messages.delete(id)) return;
    if (v.editing?.id === id) v.editing = null;
    if (v.replyTo?.id === id) { v.replyTo = null; renderReplying(v); }
    v.order = v.order.filter((x) => x !== id);
    v.nodes.delete(id);
    // Replies outlive their parent: the server unsets reply_to and keeps reply_to_id.
    for (const m of v.messages.values()) {
        if (m.reply_to === id) {
            v.messages.set(m.id, { ...m, reply_to: "", reply_to_id: m.reply_to_id || id, parent: null });
            v.nodes.delete(m.id);
        }
    }
    if (v.thread?.root.id === id) closeThread(v);
    paint(v);
}

let readTimer = null;
function readSoon(v) {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => view === v && markRead(v.id), 500);
}

document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && view?.membership) readSoon(view);
});

// ---- typing -----------------------------------------------------------------

function showTyping(v, userId) {
    clearTimeout(v.typing.get(userId));
    v.typing.set(userId, setTimeout(() => clearTyping(v, userId), 5000));
    renderTyping(v);
}

function clearTyping(v, userId) {
    if (!v.typing.has(userId)) return;
    clearTimeout(v.typing.get(userId));
    v.typing.delete(userId);
    renderTyping(v);
}

function renderTyping(v) {
    if (!v.els) return;
    const names = [...v.typing.keys()].map((id) => displayName(userById(id)));
    const text = names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…`
        : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : "Several people are typing…";
    v.els.typing.textContent = text;
    v.els.typing.classList.toggle("on", !!text);
}

let lastTyping = 0;
function sendTyping(v) {
    if (Date.now() - lastTyping < 3000) return;
    lastTyping = Date.now();
    pb.send(`/api/chat/rooms/${encodeURIComponent(v.id)}/typing`, { method: "POST" })
        .catch((err) => showError(err, "Could not send the typing notice"));
}

// ---- rendering ----------------------------------------------------------------

const peerOf = (v) => roomItem(v.id)?.peer ??
    userById([...v.members.keys()].find((id) => id !== myId()) ?? "");

function renderJoin(v) {
    const room = v.room;
    pane.replaceChildren(h("section.room",
        roomHeader(v, false),
        h("div.join-panel",
            roomAvatar(room, null, "xl"),
            h("h2", roomTitle(room, null)),
            room.description ? h("p", room.description) : null,
            h("p.muted-text", room.type === "channel" ? "A public channel. Join to read it and react." : "A public group. Join to read and write."),
            h("button.primary", {
                type: "button",
                onclick: async (e) => {
                    e.target.disabled = true;
                    try {
                        await pb.collection("chat_room_users").create({ room: room.id, user: myId() });
                        refreshRoomsSoon();
                        view = null;
                        await openRoom(room.id);
                    } catch (err) {
                        e.target.disabled = false;
                        showError(err, "Could not join");
                    }
                },
            }, "Join"))));
}

function roomHeader(v, member = true) {
    const room = v.room;
    const peer = peerOf(v);
    const memberCount = v.members.size;
    const sub = room.type === "private_messages" ? "Private chat"
        : [room.type === "channel" ? "Channel" : "Group", room.is_public ? "public" : null,
            member ? `${memberCount} member${memberCount === 1 ? "" : "s"}` : null].filter(Boolean).join(" · ");
    const muted = !!v.membership?.muted;
    return h("header.room-head",
        iconButton("back", "Back to rooms", () => (location.hash = "#/"), "back-btn"),
        h("button.room-head-title", { type: "button", title: "Room details", onclick: () => member && openRoomInfo(v.room, v.membership, v.members, peer) },
            roomAvatar(room, peer),
            h("span.room-head-text", h("h1", roomTitle(room, peer)), h("span.room-sub", sub,
                room.type === "private_messages" ? (peer?.id ? presenceLabel(peer.id) : null) : member ? presenceCount(v.members.keys()) : null))),
        member ? threadsButton(v) : null,
        member ? iconButton("pin", "Pinned messages", () => openPinned(v)) : null,
        member ? iconButton(muted ? "bellOff" : "bell", muted ? "Unmute room" : "Mute room", () => toggleMute(v), muted ? "on" : "") : null,
        member ? iconButton("info", "Room details", () => openRoomInfo(v.room, v.membership, v.members, peer)) : null);
}

/** Opens the Threads view; its badge counts the unread replies in the caller's threads. */
function threadsButton(v) {
    const n = [...v.threadUnread.values()].reduce((a, b) => a + b, 0);
    const label = n ? `Threads, ${n} unread ${n === 1 ? "reply" : "replies"}` : "Threads";
    return h("button.icon-btn.threads-btn", {
        type: "button", title: label, "aria-label": label,
        onclick: () => openThreadsView(v.id, v.threadUnread, async (root) => {
            try {
                await openThread(v, v.messages.get(root.id) ?? await fetchMessage(root.id));
            } catch (err) {
                showError(err, "Could not open the thread");
            }
        }),
    }, icon("thread"), n ? h("span.icon-badge", { "aria-hidden": "true" }, n > 99 ? "99+" : String(n)) : null);
}

function renderHeader(v) {
    if (!v.els) return;
    // Focus on one of the header's buttons stays on its successor.
    const focused = [...v.els.head.querySelectorAll("button")].indexOf(document.activeElement);
    v.els.head.replaceWith((v.els.head = roomHeader(v)));
    if (focused >= 0) v.els.head.querySelectorAll("button")[focused]?.focus();
}

async function toggleMute(v) {
    try {
        const updated = await pb.collection("chat_room_users").update(v.membership.id, { muted: !v.membership.muted });
        v.membership = updated;
        updateMembership(updated);
        renderHeader(v);
        toast(updated.muted ? "Room muted: it no longer counts in your unread total." : "Room unmuted.");
    } catch (err) {
        showError(err, "Could not change mute");
    }
}

function renderRoom(v) {
    const timeline = h("div.timeline", { role: "log", "aria-live": "polite", "aria-label": "Messages" });
    const els = (v.els = {
        head: roomHeader(v),
        timeline,
        top: h("div.timeline-top"),
        typing: h("div.typing", { "aria-live": "polite" }),
        composer: h("div.composer-slot"),
        below: h("button.new-below", { type: "button", hidden: true, onclick: () => scrollToBottom(v) }, "New messages below ↓"),
    });
    timeline.addEventListener("scroll", () => {
        v.stick = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 80;
        if (v.stick && v.newBelow) { v.newBelow = false; els.below.hidden = true; }
        if (timeline.scrollTop < 200) loadOlder(v);
    });
    timeline.addEventListener("keydown", (e) => rovingKey(v, e));
    timeline.addEventListener("focusin", (e) => {
        const node = e.target.closest?.(".msg, .notice");
        if (node && node.dataset.id !== v.focusId) { v.focusId = node.dataset.id; roving(v); }
    });
    const section = h("section.room", els.head, h("div.timeline-wrap", timeline, els.below), els.typing, els.composer);
    // Drop files anywhere on the room to attach them.
    section.addEventListener("dragover", (e) => { if (canPost(v.membership)) e.preventDefault(); });
    section.addEventListener("drop", (e) => {
        if (!canPost(v.membership)) return;
        e.preventDefault();
        addFiles(v, e.dataTransfer.files);
    });
    els.section = section;
    pane.replaceChildren(section);
    renderComposer(v);
    paint(v);
    const divider = v.firstUnread && timeline.querySelector(".unread-divider");
    if (divider && divider.offsetTop > timeline.clientHeight / 2) {
        // Jump to the first unread message, the divider at the top.
        timeline.scrollTop = divider.offsetTop - 8;
        v.stick = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 80;
    } else timeline.scrollTop = timeline.scrollHeight;
    (v.els.input ?? timeline.querySelector('[tabindex="0"]'))?.focus({ preventScroll: true });
}

function scrollToBottom(v) {
    const t = v.els.timeline;
    t.scrollTop = t.scrollHeight;
    v.stick = true;
    v.newBelow = false;
    v.els.below.hidden = true;
}

/** One Tab stop for the list: the current message has tabindex 0, arrow keys move inside. */
function roving(v) {
    const nodes = [...v.els.timeline.querySelectorAll(":scope > .msg, :scope > .notice")];
    if (!nodes.length) return;
    if (!nodes.some((n) => n.dataset.id === v.focusId)) v.focusId = nodes[nodes.length - 1].dataset.id;
    for (const n of nodes) {
        const on = n.dataset.id === v.focusId;
        n.tabIndex = on ? 0 : -1;
        for (const c of n.querySelectorAll("button, a, audio, video")) c.tabIndex = on ? 0 : -1;
    }
}

function rovingKey(v, e) {
    const node = e.target.closest?.(".msg, .notice");
    if (!node || e.target !== node) return;
    const nodes = [...v.els.timeline.querySelectorAll(":scope > .msg, :scope > .notice")];
    const i = nodes.indexOf(node);
    const to = { ArrowUp: i - 1, ArrowDown: i + 1, Home: 0, End: nodes.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = nodes[Math.max(0, Math.min(nodes.length - 1, to))];
    v.focusId = next.dataset.id;
    roving(v);
    next.focus();
}

function paintTop(v) {
    const top = v.els.top;
    if (v.loadingOlder) top.replaceChildren(h("div.spinner", { "aria-label": "Loading older messages" }));
    else if (v.hasMore) top.replaceChildren(h("button.link", { type: "button", onclick: () => loadOlder(v) }, "Load older messages"));
    else top.replaceChildren(h("div.timeline-start",
        roomAvatar(v.room, peerOf(v), "lg"),
        h("strong", roomTitle(v.room, peerOf(v))),
        h("span", v.room.description || "This is the beginning of the conversation.")));
}

/** Lays the timeline out again, reusing the element of every unchanged message. */
function paint(v) {
    if (!v.els) return;
    const { timeline } = v.els;
    const stick = v.stick;
    paintTop(v);
    const children = [v.els.top];
    let prev = null;
    const main = v.order.map((id) => v.messages.get(id)).filter((m) => !m.thread); // thread replies live in the panel
    const lastMine = [...main].reverse().find((m) => m.user === myId() && !m.system);
    for (const m of main) {
        const day = parseDate(m.created);
        if (!prev || parseDate(prev.created).toDateString() !== day.toDateString()) {
            children.push(h("div.day", h("span", dayLabel(day))));
        }
        if (m.id === v.firstUnread) children.push(h("div.unread-divider", { role: "separator", "aria-label": "New messages" }, h("span", "New messages")));
        let node = v.nodes.get(m.id);
        if (!node) v.nodes.set(m.id, (node = m.system ? noticeNode(m) : messageNode(v, m)));
        const continued = !m.system && prev && !prev.system && prev.user === m.user && parseDate(m.created) - parseDate(prev.created) < 5 * 60_000 &&
            parseDate(prev.created).toDateString() === day.toDateString() && m.id !== v.firstUnread;
        node.classList.toggle("cont", !!continued);
        children.push(node);
        const seen = m === lastMine ? seenBy(v, m) : null;
        if (seen) children.push(seen);
        prev = m;
    }
    if (!main.length) children.push(h("p.timeline-empty", "No messages yet. Say hello!"));
    timeline.replaceChildren(...children);
    roving(v);
    if (stick) timeline.scrollTop = timeline.scrollHeight;
    v.els.below.hidden = !v.newBelow;
    paintThread(v);
}

/** "Seen by" under the caller's last message: the members whose last_seen_at reached it. */
function seenBy(v, m) {
    const seers = [...v.members.values()].filter((x) => x.user !== myId() && x.last_seen_at && x.last_seen_at >= m.created);
    if (!seers.length) return null;
    const names = seers.map((x) => displayName(userById(x.user)));
    const text = v.room.type === "private_messages" ? "Seen" : names.length > 3 ? `Seen by ${names.slice(0, 3).join(", ")} and ${names.length - 3} more` : `Seen by ${names.join(", ")}`;
    return h("div.seen-by", { title: names.join(", ") }, text);
}

/** A system message (member joined, room renamed…) as a timeline notice. */
function noticeNode(m) {
    return h("div.notice", { "data-id": m.id, role: "note", tabindex: "-1" }, h("span", systemText(m)),
        h("time", { datetime: parseDate(m.created).toISOString() }, clockTime(parseDate(m.created))));
}

export function systemText(m) {
    const d = m.system_data ?? {};
    const name = (id) => (id === myId() ? "You" : displayName(userById(id)));
    const subject = name(d.user || m.user);
    const actor = name(d.by || m.user);
    switch (m.system) {
        case "member_joined": return `${subject} joined`;
        case "member_left": return `${subject} left`;
        case "member_added": return `${actor} added ${name(d.user)}`;
        case "member_removed": return `${actor} removed ${name(d.user)}`;
        case "room_renamed": return `${actor} renamed the room to “${d.name ?? ""}”`;
        default: return m.text || "Room update";
    }
}

function messageNode(v, m, inThread = false) {
    const mine = m.user === myId();
    const author = userById(m.user);
    const created = parseDate(m.created);
    const images = m.media.filter(isImage);
    const files = m.media.filter((x) => !isImage(x));
    const member = !!v.membership;
    const actions = h("div.msg-actions",
        iconButton("smile", "Add reaction", (e) => reactionPicker(v, m, e.currentTarget)),
        canPost(v.membership) && !inThread ? iconButton("reply", "Reply", () => startReply(v, m)) : null,
        !inThread && !m.thread ? iconButton("thread", "Reply in thread", (e) => openThread(v, m, e.currentTarget)) : null,
        can(v.membership, "can_pin_messages") ? iconButton("pin", m.pinned_at ? "Unpin message" : "Pin message", () => togglePin(v, m), m.pinned_at ? "on" : "") : null,
        member && !mine ? iconButton("flag", "Report message", () => reportDialog(m)) : null,
        canEditMessage(v.membership, m) ? iconButton("edit", "Edit message", () => startEdit(v, m)) : null,
        canDeleteMessage(v.membership, m) ? iconButton("trash", "Delete message", () => deleteMessage(v, m), "danger") : null);
    const mentioned = (m.mentions ?? []).includes(myId());

    return h(`article.msg${mine ? ".mine" : ""}${mentioned ? ".mentioned" : ""}`, { "data-id": m.id, tabindex: "-1", "aria-label": `${mine ? "You" : displayName(author)}, ${clockTime(created)}` },
        userAvatar(author, "sm"),
        h("div.msg-main",
            h("div.msg-meta",
                h("span.msg-author", mine ? "You" : displayName(author)),
                h("time", { datetime: created.toISOString(), title: created.toLocaleString() }, clockTime(created))),
            m.pinned_at ? h("span.pinned-tag", { title: `Pinned ${parseDate(m.pinned_at).toLocaleString()}` }, icon("pin"), "Pinned") : null,
            quote(v, m),
            h("div.msg-row",
                v.editing?.id === m.id ? editorBubble(v, m) : h(`div.bubble${!m.text ? ".pictures-only" : ""}`,
                    images.length ? h(`div.pics.n${Math.min(images.length, 4)}`, images.map((media) => picture(v, media))) : null,
                    files.map((media) => attachment(v, media)),
                    m.text ? h("div.msg-text", linkify(m.text, m.mentions)) : null,
                    m.edited_at ? h("span.edited", { title: `Edited ${parseDate(m.edited_at).toLocaleString()}` }, "edited") : null),
                actions),
            reactionsRow(v, m),
            !inThread && m.thread_count > 0 ? h("button.thread-summary", { type: "button", onclick: (e) => openThread(v, m, e.currentTarget) },
                icon("thread"), `${m.thread_count} ${m.thread_count === 1 ? "reply" : "replies"}`,
                m.thread_last_reply_at ? h("span.muted-text", ` · last ${shortTime(parseDate(m.thread_last_reply_at))}`) : null) : null));
}

/** The quoted parent of a reply; "Deleted message" once the parent is gone. */
function quote(v, m) {
    if (!m.reply_to && !m.reply_to_id) return null;
    const parent = m.reply_to ? (v.messages.get(m.reply_to) ?? m.parent) : null;
    if (!parent) {
        return h("div.quote.deleted", m.reply_to ? "Replying to a message" : "Replying to a deleted message");
    }
    const snippet = parent.text || (parent.media?.length || parent.expand ? "Attachment" : "");
    return h("button.quote", {
        type: "button", title: "Show the message replied to",
        onclick: () => {
            const node = v.els.timeline.querySelector(`[data-id="${parent.id}"]`);
            if (node) { node.scrollIntoView({ block: "center" }); v.focusId = parent.id; roving(v); node.focus({ preventScroll: true }); }
        },
    }, h("strong", parent.user === myId() ? "You" : displayName(userById(parent.user))), h("span", snippet.length > 120 ? snippet.slice(0, 120) + "…" : snippet));
}

const AUDIO = /\.(mp3|ogg|oga|opus|wav|m4a|aac|flac|weba)$/i;
const VIDEO = /\.(mp4|webm|mov|ogv|m4v)$/i;

/** Any attachment that is not a picture: a chip with name and size, a download link; players for audio and video. */
function attachment(v, media) {
    const url = mediaURL(media, v.token);
    const name = displayFileName(media.file);
    const size = media.size ? ` · ${formatSize(media.size)}` : "";
    const chip = h("div.file-chip", icon("file"),
        h("a.file-name", { href: url, target: "_blank", rel: "noopener", title: name }, name),
        h("span.file-size", (name.split(".").pop() || "file").toUpperCase() + size),
        h("a.icon-btn.file-download", { href: pb.files.getURL(media, media.file, { token: v.token, download: 1 }), download: name, title: `Download ${name}`, "aria-label": `Download ${name}` }, icon("download")));
    if (AUDIO.test(media.file)) return h("div.media-player", h("audio", { controls: true, preload: "metadata", src: url, "aria-label": name }), chip);
    if (VIDEO.test(media.file)) return h("div.media-player", h("video", { controls: true, preload: "metadata", src: url, "aria-label": name }), chip);
    return chip;
}

/** PocketBase appends _random10 to stored names: "report_a1b2c3d4e5.pdf" → "report.pdf". */
const displayFileName = (file) => file.replace(/_[a-z0-9]{10}(\.[^.]+)?$/i, "$1");

export function formatSize(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

const isImage = (media) => /\.(png|jpe?g|gif|webp|svg)$/i.test(media.file);

function picture(v, media) {
    const img = h("img", { src: mediaURL(media, v.token, "480x0"), alt: "Picture", loading: "lazy" });
    img.addEventListener("load", () => { if (v.stick) v.els.timeline.scrollTop = v.els.timeline.scrollHeight; });
    return h("button.pic", { type: "button", title: "Open picture", onclick: () => lightbox(media) }, img);
}

async function lightbox(media) {
    try {
        const url = mediaURL(media, await fileToken());
        const { close } = modal("Picture", h("div.lightbox",
            h("img", { src: url, alt: "Picture", onclick: () => close() }),
            h("a.button", { href: url, target: "_blank", rel: "noopener" }, "Open original")), { wide: true });
    } catch (err) {
        showError(err, "Could not open the picture");
    }
}

/** Links become links; "@Name" of a mentioned member is marked. */
function linkify(text, mentions = []) {
    const names = (mentions ?? []).map((id) => displayName(userById(id))).filter(Boolean)
        .map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    const parts = text.split(/(https?:\/\/[^\s<]+[^\s<.,;:!?)\]'"])/g);
    return parts.map((part, i) => {
        if (i % 2) return h("a", { href: part, target: "_blank", rel: "noopener noreferrer" }, part);
        if (!names.length) return part;
        return part.split(new RegExp(`(@(?:${names.join("|")}))`, "g"))
            .map((x, j) => (j % 2 ? h("span.mention", x) : x));
    });
}

// ---- replies, threads, pins, reports ------------------------------------------

function startReply(v, m) {
    v.replyTo = m;
    renderReplying(v);
    v.els.input?.focus();
}

function renderReplying(v) {
    const bar = v.els?.replying;
    if (!bar) return;
    const m = v.replyTo;
    bar.hidden = !m;
    if (!m) return bar.replaceChildren();
    const text = m.text || "Attachment";
    bar.replaceChildren(icon("reply"),
        h("span.replying-text", "Replying to ", h("strong", m.user === myId() ? "yourself" : displayName(userById(m.user))), ": ", text.length > 80 ? text.slice(0, 80) + "…" : text),
        iconButton("x", "Cancel the reply", () => { v.replyTo = null; renderReplying(v); v.els.input?.focus(); }));
}

async function openThread(v, root, opener) {
    if (v.thread?.root.id === root.id) return v.thread.els.input?.focus() ?? v.thread.els.panel.focus();
    closeThread(v, false);
    if (v.threadUnread.delete(root.id)) renderHeader(v); // before taking the opener: the header's buttons are new
    const t = (v.thread = { root, opener: opener?.isConnected ? opener : document.activeElement, els: {}, draft: "" });
    try {
        const replies = await pb.collection("chat_messages").getFullList({
            filter: pb.filter("thread = {:root}", { root: root.id }), sort: "created,id", expand: EXPAND, batch: 200,
        });
        await loadUsers(replies.map((r) => r.user));
        if (v.thread !== t) return;
        for (const record of replies) {
            if (v.messages.has(record.id) || v.deleted.has(record.id)) continue;
            const m = toMessage(record);
            v.messages.set(m.id, m);
            let i = v.order.length;
            while (i > 0 && compare(v.messages.get(v.order[i - 1]), m) > 0) i--;
            v.order.splice(i, 0, m.id);
        }
    } catch (err) {
        showError(err, "Could not load the thread");
    }
    if (v.thread !== t || view !== v) return;
    const list = h("div.thread-list", { role: "log", "aria-label": "Thread replies" });
    const input = canPost(v.membership) ? h("textarea.composer-input.thread-input", { rows: "1", placeholder: "Reply in thread", "aria-label": "Reply in thread" }) : null;
    const error = h("div.composer-error", { role: "alert", hidden: true });
    const form = input ? h("form.composer.thread-composer", error, h("div.composer-row", input,
        h("button.send-btn", { type: "submit", title: "Send reply", "aria-label": "Send reply" }, icon("send")))) : null;
    form?.addEventListener("submit", async (e) => {
        e.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        try {
            const record = await pb.collection("chat_messages").create({ room: v.id, text, thread: root.id });
            v.myThreads.add(root.id);
            input.value = "";
            error.hidden = true;
            await addMessage(v, record.id);
        } catch (err) {
            error.textContent = sendErrorText(v, err);
            error.hidden = false;
        }
    });
    input?.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
    });
    const panel = h("aside.thread-panel", { "aria-label": "Thread", tabindex: "-1" },
        h("header.thread-head", h("h2", "Thread"), iconButton("x", "Close thread", () => closeThread(v))),
        list, form);
    panel.addEventListener("keydown", (e) => { if (e.key === "Escape" && !e.defaultPrevented) { e.preventDefault(); closeThread(v); } });
    t.els = { panel, list, input };
    v.els.section.append(panel);
    v.els.section.classList.add("with-thread");
    paintThread(v);
    (input ?? panel).focus();
}

function paintThread(v) {
    const t = v.thread;
    if (!t?.els.list) return;
    const root = v.messages.get(t.root.id) ?? t.root;
    const replies = v.order.map((id) => v.messages.get(id)).filter((m) => m.thread === root.id);
    t.els.list.replaceChildren(messageNode(v, root, true),
        h("div.thread-count", `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`),
        ...replies.map((m) => messageNode(v, m, true)));
    t.els.list.scrollTop = t.els.list.scrollHeight;
}

function closeThread(v, refocus = true) {
    const t = v.thread;
    if (!t) return;
    v.thread = null;
    t.els.panel?.remove();
    v.els?.section?.classList.remove("with-thread");
    if (refocus) (t.opener?.isConnected ? t.opener : v.els?.input)?.focus();
}

async function togglePin(v, m) {
    try {
        const record = await pb.collection("chat_messages").update(m.id, { pinned: !m.pinned_at });
        const current = v.messages.get(m.id);
        if (current) updateMessage(v, { ...current, ...liveFields(record) });
        toast(record.pinned_at ? "Message pinned." : "Message unpinned.");
    } catch (err) {
        showError(err, m.pinned_at ? "Could not unpin the message" : "Could not pin the message");
    }
}

async function openPinned(v) {
    const body = h("div.pinned-list", h("p.muted-text", "Loading…"));
    const { close } = modal("Pinned messages", body);
    try {
        const res = await pb.collection("chat_messages").getList(1, 100, {
            filter: pb.filter("room = {:room} && pinned_at != ''", { room: v.id }), sort: "-pinned_at", skipTotal: true,
        });
        await loadUsers(res.items.map((m) => m.user));
        body.replaceChildren(...(res.items.length ? res.items.map((m) => h("div.pinned-item",
            h("div.pinned-meta", h("strong", m.user === myId() ? "You" : displayName(userById(m.user))), " · ", shortTime(parseDate(m.created))),
            h("div.pinned-text", m.text || "Attachment"),
            h("div.pinned-actions",
                h("button.small", { type: "button", onclick: () => { close(); jumpTo(v, m.id); } }, "Go to message"),
                can(v.membership, "can_pin_messages") ? h("button.small", { type: "button", onclick: async () => { await togglePin(v, { ...m, pinned_at: m.pinned_at }); close(); } }, "Unpin") : null)))
            : [h("p.muted-text", "No pinned messages yet.")]));
    } catch (err) {
        body.replaceChildren(h("p.form-error", `Could not load the pinned messages: ${errorText(err)}`));
    }
}

function jumpTo(v, id) {
    const node = v.els.timeline.querySelector(`[data-id="${id}"]`);
    if (!node) return toast("That message is further back: scroll up to load it.");
    node.scrollIntoView({ block: "center" });
    v.focusId = id;
    roving(v);
    node.focus({ preventScroll: true });
}

/** A refused post in words: slow mode says how long to wait, silence says until when. */
function sendErrorText(v, err) {
    if (err?.status === 429) {
        const n = v.room.slow_mode_seconds;
        return n ? `Slow mode is on: each member may post once every ${n} seconds. Your text is kept; try again shortly.` : `Too many messages: wait a moment. Your text is kept.`;
    }
    const field = err?.response?.data?.text?.message;
    if (field) return `Not sent: ${field}. Your text is kept.`;
    return `Not sent: ${errorText(err)}`;
}

// ---- reactions ----------------------------------------------------------------

function reactionsRow(v, m) {
    if (!m.reactions.length) return null;
    const groups = new Map();
    for (const r of m.reactions) {
        if (!groups.has(r.reaction)) groups.set(r.reaction, []);
        groups.get(r.reaction).push(r);
    }
    return h("div.reactions", [...groups].map(([emoji, list]) => {
        const mine = list.some((r) => r.user === myId());
        const names = list.map((r) => (r.user === myId() ? "You" : displayName(userById(r.user)))).join(", ");
        return h(`button.reaction${mine ? ".mine" : ""}`, {
            type: "button", title: `${names} reacted ${emoji}`, "aria-pressed": mine ? "true" : "false",
            "data-reaction": emoji, onclick: () => toggleReaction(v, m.id, emoji),
        }, h("span.emoji", emoji), h("span.count", String(list.length)));
    }));
}

async function toggleReaction(v, messageId, emoji) {
    const m = v.messages.get(messageId);
    if (!m) return;
    const mine = m.reactions.find((r) => r.user === myId() && r.reaction === emoji);
    try {
        if (mine) {
            await pb.collection("chat_message_reactions").delete(mine.id);
            v.deletedReactions.add(mine.id);
            const current = v.messages.get(messageId);
            if (current) updateMessage(v, { ...current, reactions: current.reactions.filter((r) => r.id !== mine.id) });
        } else {
            const record = await pb.collection("chat_message_reactions").create({ message: messageId, reaction: emoji });
            const current = v.messages.get(messageId);
            if (current && !current.reactions.some((r) => r.id === record.id)) {
                updateMessage(v, { ...current, reactions: [...current.reactions, record] });
            }
        }
    } catch (err) {
        showError(err, mine ? "Could not remove the reaction" : "Could not react");
    }
}

function reactionPicker(v, m, anchor) {
    document.querySelector(".picker")?.remove();
    const picker = h("div.picker", { role: "menu", "aria-label": "Pick a reaction" },
        QUICK_REACTIONS.map((emoji) => h("button", {
            type: "button", role: "menuitem", title: emoji, "aria-label": `React ${emoji}`,
            onclick: () => { picker.remove(); toggleReaction(v, m.id, emoji); if (anchor.isConnected) anchor.focus(); },
        }, emoji)));
    document.body.append(picker);
    const r = anchor.getBoundingClientRect();
    const left = Math.min(Math.max(8, r.left + r.width / 2 - picker.offsetWidth / 2), innerWidth - picker.offsetWidth - 8);
    const top = r.top - picker.offsetHeight - 6 < 8 ? r.bottom + 6 : r.top - picker.offsetHeight - 6;
    picker.style.left = `${left}px`;
    picker.style.top = `${top}px`;
    const buttons = [...picker.querySelectorAll("button")];
    buttons.forEach((b, i) => (b.tabIndex = i ? -1 : 0));
    buttons[0].focus();
    picker.addEventListener("keydown", (e) => {
        const i = buttons.indexOf(document.activeElement);
        const to = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: buttons.length - 1 }[e.key];
        if (to === undefined) return;
        e.preventDefault();
        const next = buttons[(to + buttons.length) % buttons.length];
        buttons.forEach((b) => (b.tabIndex = b === next ? 0 : -1));
        next.focus();
    });
    const dismiss = (e) => {
        if (e.type === "keydown" ? (e.key === "Escape" || e.key === "Tab") : !picker.contains(e.target)) {
            if (e.type === "keydown" && e.key === "Escape") { e.preventDefault(); e.stopPropagation(); }
            picker.remove();
            document.removeEventListener("pointerdown", dismiss, true);
            document.removeEventListener("keydown", dismiss, true);
            if (e.type === "keydown" && e.key === "Escape" && anchor.isConnected) anchor.focus();
        }
    };
    document.addEventListener("pointerdown", dismiss, true);
    document.addEventListener("keydown", dismiss, true);
}

// ---- edit and delete --------------------------------------------------------

// The draft lives in the view, so a live update of the message (a reaction
// arriving) redraws the editor without losing what was typed.
function startEdit(v, m) {
    v.editing = { id: m.id, draft: m.text };
    v.nodes.delete(m.id);
    paint(v);
    focusEditor(v);
}

function focusEditor(v) {
    const input = v.els.timeline.querySelector(".edit-input");
    input?.focus();
    input?.setSelectionRange(input.value.length, input.value.length);
}

function editorBubble(v, m) {
    const input = h("textarea.edit-input", { rows: "2", "aria-label": "Edited text" });
    input.value = v.editing.draft;
    const done = () => {
        v.editing = null;
        v.nodes.delete(m.id);
        paint(v);
    };
    const save = async () => {
        const text = input.value.trim();
        if (text === m.text) return done();
        if (!text && !m.media.length) {
            // A message cannot be empty: offer to delete it instead.
            if (confirm("A message cannot be empty. Delete this message instead?")) { v.editing = null; return deleteMessage(v, m, true); }
            return input.focus();
        }
        saveBtn.disabled = true;
        try {
            const record = await pb.collection("chat_messages").update(m.id, { text });
            const current = v.messages.get(m.id) ?? m;
            v.editing = null;
            updateMessage(v, { ...current, text: record.text, edited_at: record.edited_at, updated: record.updated });
        } catch (err) {
            saveBtn.disabled = false;
            showError(err, "Could not edit the message");
        }
    };
    const saveBtn = h("button.primary.small", { type: "button", onclick: save }, "Save");
    input.addEventListener("input", () => { if (v.editing) v.editing.draft = input.value; });
    input.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); save(); }
        if (e.key === "Escape") done();
    });
    return h("div.bubble.editing", input,
        h("div.edit-buttons", h("button.small", { type: "button", onclick: done }, "Cancel"), saveBtn));
}

async function deleteMessage(v, m, confirmed = false) {
    if (!confirmed && !confirm("Delete this message for everyone?")) return;
    try {
        await pb.collection("chat_messages").delete(m.id);
        v.deleted.add(m.id);
        removeMessage(v, m.id);
    } catch (err) {
        showError(err, "Could not delete the message");
    }
}

// ---- composer -----------------------------------------------------------------

/** What the composer depends on: may post, and silenced until when. */
function composerState(m) {
    const until = parseDate(m?.silenced_until || "");
    return `${canPost(m)}|${until && until > new Date() ? m.silenced_until : ""}`;
}

function renderComposer(v) {
    const slot = v.els.composer;
    v.els.input = null;
    v.els.replying = null;
    const silencedUntil = parseDate(v.membership?.silenced_until || "");
    if (canPost(v.membership) && silencedUntil && silencedUntil > new Date()) {
        slot.replaceChildren(h("div.no-composer", icon("info"), `You are silenced in this room until ${silencedUntil.toLocaleString()}. You can still read and react.`));
        clearTimeout(v.silenceTimer);
        v.silenceTimer = setTimeout(() => view === v && renderComposer(v), Math.min(silencedUntil - new Date() + 500, 2 ** 31 - 1));
        return;
    }
    if (!canPost(v.membership)) {
        slot.replaceChildren(h("div.no-composer", icon("info"),
            v.room.type === "channel"
                ? "Only this channel's editors post here. You can read and react."
                : "You can read and react here, but not post."));
        return;
    }
    const input = h("textarea.composer-input", {
        rows: "1", placeholder: `Message ${roomTitle(v.room, peerOf(v))}`, "aria-label": "Message",
        "aria-autocomplete": "list", "aria-controls": `mentions-${v.id}`,
    });
    const fileInput = h("input", { type: "file", multiple: true, hidden: true, "aria-label": "Attach files" });
    const previews = h("div.previews");
    const replying = h("div.replying", { hidden: true });
    const error = h("div.composer-error", { role: "alert", hidden: true });
    const mentionList = h("ul.mention-list", { id: `mentions-${v.id}`, role: "listbox", "aria-label": "Members to mention", hidden: true });
    const sendBtn = h("button.send-btn", { type: "submit", title: "Send", "aria-label": "Send" }, icon("send"));
    const form = h("form.composer",
        mentionList, error, replying, previews,
        h("div.composer-row",
            iconButton("attach", "Attach files", () => fileInput.click(), "attach-btn"),
            input, fileInput, sendBtn));
    v.els.input = input;
    v.els.previews = previews;
    v.els.replying = replying;
    v.els.error = error;
    input.value = v.draft ?? ""; // the composer may be redrawn (permissions changed) mid-sentence
    renderReplying(v);

    const autosize = () => { input.style.height = "auto"; input.style.height = `${Math.min(input.scrollHeight, 160)}px`; };
    const mentions = mentionPicker(v, input, mentionList);
    input.addEventListener("input", () => {
        v.draft = input.value;
        error.hidden = true;
        autosize();
        mentions.update();
        if (input.value.trim()) sendTyping(v);
    });
    input.addEventListener("keydown", (e) => {
        if (mentions.key(e)) return;
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
        if (e.key === "Escape" && v.replyTo) { e.preventDefault(); v.replyTo = null; renderReplying(v); }
    });
    // Focus moving elsewhere in the page closes the list (not the window losing focus).
    input.addEventListener("blur", (e) => { if (e.relatedTarget && !mentionList.contains(e.relatedTarget)) mentions.close(); });
    form.addEventListener("pointerdown", (e) => { if (!mentionList.contains(e.target) && e.target !== input) mentions.close(); });
    input.addEventListener("paste", (e) => {
        const files = [...e.clipboardData.files];
        if (files.length) { e.preventDefault(); addFiles(v, files); }
    });
    fileInput.addEventListener("change", () => { addFiles(v, fileInput.files); fileInput.value = ""; });
    form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const text = input.value.trim();
        if (!text && !v.pending.length) return;
        sendBtn.disabled = true;
        form.classList.add("sending");
        try {
            await send(v, text, v.pending.map((p) => p.file));
            input.value = v.draft = "";
            v.replyTo = null;
            v.mentionIds.clear();
            renderReplying(v);
            error.hidden = true;
            autosize();
            clearPending(v);
        } catch (err) {
            // In words, above the composer (never over it); the text stays to be fixed.
            error.textContent = sendErrorText(v, err);
            error.hidden = false;
            if (err?.status !== 429) console.warn("pbchat: message not sent", err?.response ?? err);
        } finally {
            sendBtn.disabled = false;
            form.classList.remove("sending");
            input.focus();
        }
    });
    slot.replaceChildren(form);
    renderPending(v);
}

/** @-autocomplete among the room's members: picking one writes "@Name " and remembers the id for `mentions`. */
function mentionPicker(v, input, list) {
    let items = [];
    let active = 0;
    let start = -1;
    const close = () => {
        list.hidden = true;
        items = [];
        input.removeAttribute("aria-activedescendant");
    };
    const render = () => {
        list.replaceChildren(...items.map((u, i) => h("li.mention-option", {
            id: `mention-${v.id}-${u.id}`, role: "option", "aria-selected": i === active ? "true" : "false",
            onmousedown: (e) => { e.preventDefault(); pick(i); },
        }, userAvatar(u, "xs"), h("span", displayName(u)))));
        list.hidden = !items.length;
        if (items.length) input.setAttribute("aria-activedescendant", `mention-${v.id}-${items[active].id}`);
    };
    const pick = (i) => {
        const u = items[i];
        if (!u) return;
        const name = displayName(u);
        const caret = input.selectionStart;
        input.value = `${input.value.slice(0, start)}@${name} ${input.value.slice(caret)}`;
        const at = start + name.length + 2;
        input.setSelectionRange(at, at);
        v.mentionIds.set(name, u.id);
        v.draft = input.value;
        close();
        input.focus();
    };
    return {
        close,
        update() {
            const before = input.value.slice(0, input.selectionStart);
            const match = /(^|\s)@([^\s@]{0,30})$/.exec(before);
            if (!match) return close();
            start = before.length - match[2].length - 1;
            const q = match[2].toLowerCase();
            items = [...v.members.keys()].filter((id) => id !== myId()).map(userById).filter((u) => u?.id)
                .filter((u) => displayName(u).toLowerCase().includes(q))
                .sort((a, b) => displayName(a).localeCompare(displayName(b))).slice(0, 8);
            active = 0;
            render();
        },
        key(e) {
            if (list.hidden || !items.length) return false;
            if (e.key === "ArrowDown" || e.key === "ArrowUp") {
                active = (active + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
                render();
            } else if (e.key === "Enter" || e.key === "Tab") pick(active);
            else if (e.key === "Escape") close();
            else return false;
            e.preventDefault();
            e.stopPropagation();
            return true;
        },
    };
}

async function send(v, text, files) {
    // 1. Upload each file to chat_media; 2. post the message naming them.
    const media = [];
    for (const file of files) {
        const form = new FormData();
        form.append("file", file, file.name || "file");
        media.push((await pb.collection("chat_media").create(form)).id);
    }
    const mentions = [...v.mentionIds].filter(([name]) => text.includes(`@${name}`)).map(([, id]) => id);
    const record = await pb.collection("chat_messages").create({
        room: v.id, text,
        ...(media.length ? { media } : {}),
        ...(v.replyTo ? { reply_to: v.replyTo.id } : {}),
        ...(mentions.length ? { mentions: [...new Set(mentions)] } : {}),
    });
    v.stick = true;
    v.newBelow = false;
    await addMessage(v, record.id);
}

function addFiles(v, fileList) {
    for (const file of fileList) {
        v.pending.push({ file, url: file.type.startsWith("image/") ? URL.createObjectURL(file) : "" });
    }
    renderPending(v);
    v.els.input?.focus();
}

function clearPending(v) {
    v.pending.forEach((p) => p.url && URL.revokeObjectURL(p.url));
    v.pending = [];
    renderPending(v);
}

function renderPending(v) {
    const el = v.els.previews;
    if (!el) return;
    el.replaceChildren(...v.pending.map((p, i) => h(`div.preview${p.url ? "" : ".file"}`,
        p.url ? h("img", { src: p.url, alt: p.file.name }) : h("span.preview-file", icon("file"), h("span", p.file.name), h("span.file-size", formatSize(p.file.size))),
        iconButton("x", `Remove ${p.file.name}`, () => {
            if (p.url) URL.revokeObjectURL(p.url);
            v.pending.splice(i, 1);
            renderPending(v);
        }, "remove"))));
    el.classList.toggle("on", v.pending.length > 0);
}

/** Loads the open room again (after a reconnect, events may have been missed). */
export function reopenRoom() {
    if (!view) return;
    const id = view.id;
    view.unsubscribe?.();
    view = null;
    openRoom(id);
}
