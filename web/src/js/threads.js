// The Threads view: the caller's threads in the open room (those they
// started, replied in or were mentioned in), newest reply first, each with
// the replies of others not read yet. GET /api/chat/threads?room=ID.
//
// The server counts unread replies from the member's last_seen_at, which
// opening the room moves on: room.js keeps the counts it loaded before
// marking the room read, adds the replies that arrive, and passes them here.
import { pb, myId, displayName, userById, loadUsers, errorText } from "./pb.js";
import { h, userAvatar, modal, parseDate, shortTime } from "./dom.js";

/** The caller's threads in room: [{ root, unread }]. */
export async function loadThreads(roomId) {
    const res = await pb.send("/api/chat/threads", { query: { room: roomId } });
    return res?.items ?? [];
}

/**
 * Opens the list; unread maps a root id to the replies not read that the
 * room counted since it opened. onOpen(root record) opens a thread.
 */
export async function openThreadsView(roomId, unread, onOpen) {
    const list = h("div.thread-items", { "aria-busy": "true" }, h("p.muted-text", "Loading…"));
    const { close } = modal("Threads", list);
    try {
        const items = await loadThreads(roomId);
        await loadUsers(items.map((t) => t.root.user));
        list.replaceChildren(...(items.length
            ? items.map(({ root, unread: n }) => threadItem(root, Math.max(n ?? 0, unread.get(root.id) ?? 0), () => { close(); onOpen(root); }))
            : [h("p.muted-text", "No threads for you here yet. Threads you start, reply in or are mentioned in show up here.")]));
    } catch (err) {
        list.replaceChildren(h("p.error-text", `Could not load the threads: ${errorText(err)}`));
    }
    list.removeAttribute("aria-busy");
}

function threadItem(root, unread, open) {
    const author = userById(root.user);
    const text = root.text || "Attachment";
    const last = parseDate(root.thread_last_reply_at);
    const replies = `${root.thread_count} ${root.thread_count === 1 ? "reply" : "replies"}`;
    return h(`button.thread-item${unread ? ".unread" : ""}`, { type: "button", "data-id": root.id, onclick: open },
        userAvatar(author, "sm"),
        h("span.thread-item-text",
            h("span.thread-item-meta", h("strong", root.user === myId() ? "You" : displayName(author)), ` · ${replies}`, last ? ` · last ${shortTime(last)}` : ""),
            h("span.thread-item-root", text.length > 140 ? text.slice(0, 140) + "…" : text)),
        unread ? h("span.badge.thread-unread", `${unread} unread`) : null);
}
