// The open room (right column): header, timeline with older pages on
// scroll, composer with picture upload, reactions, edit and delete, typing.
// Live through the room topic `chat/rooms/{id}`, and through the events
// GET /api/chat/sync returns after a reconnect (sync.js).
import { pb, myId, userById, displayName, loadUsers, rememberUser, fileToken, mediaURL, errorText } from "./pb.js";
import { h, icon, iconButton, userAvatar, clockTime, dayLabel, parseDate, showError, toast, modal } from "./dom.js";
import { roomItem, roomTitle, roomAvatar, markRead, setOpenRoom, refreshRoomsSoon, updateMembership } from "./rooms.js";
import { canPost, canEditMessage, canDeleteMessage } from "./permissions.js";
import { openRoomInfo } from "./dialogs.js";
import { live } from "./sync.js";
import { presenceLabel, presenceCount } from "./presence.js";

const PAGE = 30;
const EXPAND = "chat_message_media_via_message.media,chat_message_reactions_via_message";
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
        // Follow the room first and hold its events until the history is in,
        // so nothing sent meanwhile is missed.
        v.queue = [];
        await follow(v);
        if (view !== v) return;
        await Promise.all([loadMembers(v), loadPage(v), fileToken().then((t) => (v.token = t))]);
        if (view !== v) return;
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
    await loadUsers([m.user]);
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
    paint(v);
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
            addMessage(v, record.id)
                .then(() => record.user !== myId() && document.visibilityState === "visible" && readSoon(v))
                .catch((err) => err?.status !== 404 && showError(err, "Could not load a new message")); // 404: deleted since
            break;
        case "message.updated": {
            const m = v.messages.get(record.id);
            if (m && !isOlder(record, m)) updateMessage(v, { ...m, text: record.text, edited_at: record.edited_at, updated: record.updated });
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
    if (left) v.members.delete(record.user);
    else {
        if (isOlder(record, v.members.get(record.user))) return;
        await loadUsers([record.user]);
        v.members.set(record.user, record);
    }
    if (view !== v) return;
    if (record.user === myId()) {
        if (left) {
            toast(`You are no longer a member of “${roomTitle(v.room, peerOf(v))}”.`);
            refreshRoomsSoon();
            location.hash = "#/";
            return;
        }
        const before = [...(v.membership?.permissions ?? [])].sort().join();
        v.membership = record;
        updateMembership(record);
        // Reading the room updates last_seen_at too: redraw only when the permissions
        // changed (the composer keeps what is being typed otherwise).
        if ([...(record.permissions ?? [])].sort().join() !== before) {
            v.nodes.clear(); // which actions each message offers may have changed
            renderComposer(v);
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
    v.order = v.order.filter((x) => x !== id);
    v.nodes.delete(id);
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
        member ? iconButton(muted ? "bellOff" : "bell", muted ? "Unmute room" : "Mute room", () => toggleMute(v), muted ? "on" : "") : null,
        member ? iconButton("info", "Room details", () => openRoomInfo(v.room, v.membership, v.members, peer)) : null);
}

function renderHeader(v) {
    if (v.els) v.els.head.replaceWith((v.els.head = roomHeader(v)));
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
    });
    timeline.addEventListener("scroll", () => {
        v.stick = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 80;
        if (timeline.scrollTop < 200) loadOlder(v);
    });
    const section = h("section.room", els.head, timeline, els.typing, els.composer);
    // Drop pictures anywhere on the room to attach them.
    section.addEventListener("dragover", (e) => { if (canPost(v.membership)) e.preventDefault(); });
    section.addEventListener("drop", (e) => {
        if (!canPost(v.membership)) return;
        e.preventDefault();
        addFiles(v, e.dataTransfer.files);
    });
    pane.replaceChildren(section);
    renderComposer(v);
    paint(v);
    timeline.scrollTop = timeline.scrollHeight;
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
    for (const id of v.order) {
        const m = v.messages.get(id);
        const day = parseDate(m.created);
        if (!prev || parseDate(prev.created).toDateString() !== day.toDateString()) {
            children.push(h("div.day", h("span", dayLabel(day))));
        }
        let node = v.nodes.get(id);
        if (!node) v.nodes.set(id, (node = messageNode(v, m)));
        const continued = prev && prev.user === m.user && parseDate(m.created) - parseDate(prev.created) < 5 * 60_000 &&
            parseDate(prev.created).toDateString() === day.toDateString();
        node.classList.toggle("cont", !!continued);
        children.push(node);
        prev = m;
    }
    if (!v.order.length) children.push(h("p.timeline-empty", "No messages yet. Say hello!"));
    timeline.replaceChildren(...children);
    if (stick) timeline.scrollTop = timeline.scrollHeight;
}

function messageNode(v, m) {
    const mine = m.user === myId();
    const author = userById(m.user);
    const created = parseDate(m.created);
    const images = m.media.filter(isImage);
    const files = m.media.filter((x) => !isImage(x));
    const actions = h("div.msg-actions",
        iconButton("smile", "Add reaction", (e) => reactionPicker(v, m, e.currentTarget)),
        canEditMessage(v.membership, m) ? iconButton("edit", "Edit message", () => startEdit(v, m)) : null,
        canDeleteMessage(v.membership, m) ? iconButton("trash", "Delete message", () => deleteMessage(v, m), "danger") : null);

    return h(`article.msg${mine ? ".mine" : ""}`, { "data-id": m.id, tabindex: "0" },
        userAvatar(author, "sm"),
        h("div.msg-main",
            h("div.msg-meta",
                h("span.msg-author", mine ? "You" : displayName(author)),
                h("time", { datetime: created.toISOString(), title: created.toLocaleString() }, clockTime(created))),
            h("div.msg-row",
                v.editing?.id === m.id ? editorBubble(v, m) : h(`div.bubble${!m.text ? ".pictures-only" : ""}`,
                    images.length ? h(`div.pics.n${Math.min(images.length, 4)}`, images.map((media) => picture(v, media))) : null,
                    files.map((media) => h("a.file-chip", { href: mediaURL(media, v.token), target: "_blank", rel: "noopener" }, icon("attach"), media.file)),
                    m.text ? h("div.msg-text", linkify(m.text)) : null,
                    m.edited_at ? h("span.edited", { title: `Edited ${parseDate(m.edited_at).toLocaleString()}` }, "edited") : null),
                actions),
            reactionsRow(v, m)));
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

function linkify(text) {
    const parts = text.split(/(https?:\/\/[^\s<]+[^\s<.,;:!?)\]'"])/g);
    return parts.map((part, i) => (i % 2 ? h("a", { href: part, target: "_blank", rel: "noopener noreferrer" }, part) : part));
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
            type: "button", role: "menuitem", title: emoji,
            onclick: () => { picker.remove(); toggleReaction(v, m.id, emoji); },
        }, emoji)));
    document.body.append(picker);
    const r = anchor.getBoundingClientRect();
    const left = Math.min(Math.max(8, r.left + r.width / 2 - picker.offsetWidth / 2), innerWidth - picker.offsetWidth - 8);
    const top = r.top - picker.offsetHeight - 6 < 8 ? r.bottom + 6 : r.top - picker.offsetHeight - 6;
    picker.style.left = `${left}px`;
    picker.style.top = `${top}px`;
    picker.querySelector("button").focus();
    const dismiss = (e) => {
        if (e.type === "keydown" ? e.key === "Escape" : !picker.contains(e.target)) {
            picker.remove();
            document.removeEventListener("pointerdown", dismiss, true);
            document.removeEventListener("keydown", dismiss, true);
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

async function deleteMessage(v, m) {
    if (!confirm("Delete this message for everyone?")) return;
    try {
        await pb.collection("chat_messages").delete(m.id);
        v.deleted.add(m.id);
        removeMessage(v, m.id);
    } catch (err) {
        showError(err, "Could not delete the message");
    }
}

// ---- composer -----------------------------------------------------------------

function renderComposer(v) {
    const slot = v.els.composer;
    if (!canPost(v.membership)) {
        slot.replaceChildren(h("div.no-composer", icon("info"),
            v.room.type === "channel"
                ? "Only this channel's editors post here. You can read and react."
                : "You can read and react here, but not post."));
        return;
    }
    const input = h("textarea.composer-input", {
        rows: "1", placeholder: `Message ${roomTitle(v.room, peerOf(v))}`, "aria-label": "Message",
    });
    const fileInput = h("input", { type: "file", accept: "image/*", multiple: true, hidden: true, "aria-label": "Attach pictures" });
    const previews = h("div.previews");
    const sendBtn = h("button.send-btn", { type: "submit", title: "Send", "aria-label": "Send" }, icon("send"));
    const form = h("form.composer",
        previews,
        h("div.composer-row",
            iconButton("attach", "Attach pictures", () => fileInput.click(), "attach-btn"),
            input, fileInput, sendBtn));
    v.els.input = input;
    v.els.previews = previews;
    input.value = v.draft ?? ""; // the composer may be redrawn (permissions changed) mid-sentence

    const autosize = () => { input.style.height = "auto"; input.style.height = `${Math.min(input.scrollHeight, 160)}px`; };
    input.addEventListener("input", () => {
        v.draft = input.value;
        autosize();
        if (input.value.trim()) sendTyping(v);
    });
    input.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
    });
    input.addEventListener("paste", (e) => {
        const files = [...e.clipboardData.files].filter((f) => f.type.startsWith("image/"));
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
            autosize();
            clearPending(v);
        } catch (err) {
            showError(err, "Message not sent");
        } finally {
            sendBtn.disabled = false;
            form.classList.remove("sending");
            input.focus();
        }
    });
    slot.replaceChildren(form);
    renderPending(v);
}

async function send(v, text, files) {
    // 1. Upload each picture to chat_media; 2. post the message naming them.
    const media = [];
    for (const file of files) {
        const form = new FormData();
        form.append("file", file, file.name || "picture.png");
        media.push((await pb.collection("chat_media").create(form)).id);
    }
    const record = await pb.collection("chat_messages").create({ room: v.id, text, ...(media.length ? { media } : {}) });
    v.stick = true;
    await addMessage(v, record.id);
}

function addFiles(v, fileList) {
    const images = [...fileList].filter((f) => f.type.startsWith("image/"));
    if (images.length < fileList.length) toast("Only pictures can be attached.", "error");
    for (const file of images) {
        v.pending.push({ file, url: URL.createObjectURL(file) });
    }
    renderPending(v);
    v.els.input?.focus();
}

function clearPending(v) {
    v.pending.forEach((p) => URL.revokeObjectURL(p.url));
    v.pending = [];
    renderPending(v);
}

function renderPending(v) {
    const el = v.els.previews;
    if (!el) return;
    el.replaceChildren(...v.pending.map((p, i) => h("div.preview",
        h("img", { src: p.url, alt: p.file.name }),
        iconButton("x", `Remove ${p.file.name}`, () => {
            URL.revokeObjectURL(p.url);
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
