// Dialogs: start a chat (private, group, channel), browse public rooms, and
// a room's details (members, mute, edit, leave, delete).
import { pb, myId, me, displayName, searchUsers, userById, rememberUser } from "./pb.js";
import { h, icon, iconButton, userAvatar, modal, showError, toast } from "./dom.js";
import { roomItem, roomTitle, roomAvatar, refreshRoomsSoon, loadRooms, updateMembership } from "./rooms.js";
import { can, canRemoveMember, roleOf, editorPermissions } from "./permissions.js";
import { presenceDot } from "./presence.js";
import { banDialog, openBanList, openReports } from "./moderation.js";

// ---- people picker ------------------------------------------------------------

/**
 * Search people by name (or paste a user id). Single mode calls onPick(user);
 * multiple mode keeps a selection shown as chips.
 */
function peoplePicker({ multiple = false, onPick = () => {}, exclude = new Set(), label = "Search people" }) {
    const selected = new Map();
    const input = h("input.search", { type: "search", placeholder: "Name or user id", "aria-label": label, autocomplete: "off" });
    const chips = h("div.chips");
    const results = h("div.people", { role: "listbox", "aria-label": "People" });

    const renderChips = () => chips.replaceChildren(...[...selected.values()].map((u) =>
        h("span.chip", userAvatar(u, "xs"), displayName(u),
            iconButton("x", `Remove ${displayName(u)}`, () => { selected.delete(u.id); renderChips(); renderResults(last); }))));

    let last = [];
    const renderResults = (users) => {
        last = users;
        const rows = users.filter((u) => !exclude.has(u.id)).map((u) => h(`button.person${selected.has(u.id) ? ".selected" : ""}`, {
            type: "button", role: "option", "aria-selected": selected.has(u.id) ? "true" : "false", "data-user": u.id,
            onclick: () => {
                if (!multiple) return onPick(u);
                if (selected.has(u.id)) selected.delete(u.id);
                else selected.set(u.id, u);
                renderChips();
                renderResults(last);
            },
        }, userAvatar(u, "sm"), h("span.person-name", displayName(u)), u.placeholder ? h("span.muted-text", u.id) : null,
        multiple ? h("span.check", selected.has(u.id) ? "✓" : "") : null));
        results.replaceChildren(...(rows.length ? rows : [h("p.muted-text", "Nobody found. Try a name, or paste a user id.")]));
    };

    let seq = 0;
    const search = async () => {
        const q = input.value.trim();
        const mine = ++seq;
        try {
            let users = await searchUsers(q);
            // The users collection may hide other users: accept a pasted id as it is.
            if (!users.length && /^[a-z0-9]{15}$/.test(q) && q !== myId()) users = [{ id: q, name: "", placeholder: true }];
            if (mine === seq) renderResults(users);
        } catch (err) {
            if (mine === seq) results.replaceChildren(h("p.error-text", `Cannot search people: ${err.response?.message || err.message}`));
        }
    };
    let timer = null;
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 200); });
    search();
    return { el: h("div.picker-box", multiple ? chips : null, input, results), selected, focus: () => input.focus() };
}

function newId() {
    const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    const bytes = crypto.getRandomValues(new Uint8Array(15));
    return [...bytes].map((b) => alphabet[b % alphabet.length]).join("");
}

// ---- new chat -----------------------------------------------------------------

export function openNewChat(kind = "private") {
    const body = h("div.new-chat");
    const tabs = h("div.segmented", { role: "tablist" });
    const kinds = [["private", "Direct"], ["group", "Group"], ["channel", "Channel"]];
    const { close } = modal("New chat", [tabs, body]);

    const show = (k) => {
        kind = k;
        tabs.replaceChildren(...kinds.map(([key, label]) => h(`button${key === k ? ".on" : ""}`, {
            type: "button", role: "tab", "aria-selected": key === k ? "true" : "false", onclick: () => show(key),
        }, label)));
        body.replaceChildren(k === "private" ? directForm(close) : roomForm(k, close));
        body.querySelector("input")?.focus();
    };
    show(kind);
}

function directForm(close) {
    const picker = peoplePicker({
        onPick: async (user) => {
            try {
                const room = await pb.send("/api/chat/private", { method: "POST", body: { user: user.id } });
                close();
                await loadRooms();
                location.hash = `#/room/${room.id}`;
            } catch (err) {
                showError(err, "Could not start the chat");
            }
        },
    });
    return h("div", h("p.muted-text", "Pick someone to talk to in private."), picker.el);
}

function roomForm(type, close) {
    const name = h("input", { type: "text", required: true, maxlength: "255", placeholder: type === "channel" ? "e.g. Announcements" : "e.g. Weekend trip", "aria-label": "Name" });
    const description = h("input", { type: "text", placeholder: "What is it about? (optional)", "aria-label": "Description" });
    const isPublic = h("input", { type: "checkbox" });
    const picker = peoplePicker({ multiple: true, label: type === "channel" ? "Add readers" : "Add people" });
    const submit = h("button.primary", { type: "submit" }, type === "channel" ? "Create channel" : "Create group");
    const form = h("form.stack",
        h("label", h("span", "Name"), name),
        h("label", h("span", "Description"), description),
        h("div.field", h("span", type === "channel" ? "Readers (they read and react; you post)" : "People"), picker.el),
        h("label.check-row", isPublic, h("span", type === "channel" ? "Public: anyone can find the channel and subscribe" : "Public: anyone can find the group and join")),
        h("div.form-actions", submit));
    form.addEventListener("submit", async (e) => {
        e.preventDefault();
        if (!name.value.trim()) return name.focus();
        submit.disabled = true;
        // One atomic batch: the room, a membership per person, a first message.
        const roomId = newId();
        const batch = pb.createBatch();
        batch.collection("chat_rooms").create({ id: roomId, type, name: name.value.trim(), description: description.value.trim(), is_public: isPublic.checked });
        for (const user of picker.selected.values()) {
            batch.collection("chat_room_users").create({ room: roomId, user: user.id, ...(type === "channel" ? { permissions: [] } : {}) });
        }
        batch.collection("chat_messages").create({ room: roomId, text: `${displayName(me())} created ${type === "channel" ? "the channel" : "a chat"}` });
        try {
            await batch.send();
            close();
            await loadRooms();
            location.hash = `#/room/${roomId}`;
        } catch (err) {
            submit.disabled = false;
            showError(err, `Could not create the ${type}`);
        }
    });
    return form;
}

// ---- public rooms -------------------------------------------------------------

export async function openBrowse() {
    const list = h("div.public-rooms", h("div.spinner"));
    modal("Public rooms", [h("p.muted-text", "Groups and channels anyone can join."), list]);
    try {
        const res = await pb.collection("chat_rooms").getList(1, 100, { filter: "is_public = true", sort: "-created", skipTotal: true });
        const rows = res.items.map((room) => {
            const joined = !!roomItem(room.id);
            return h("div.public-room", { "data-room": room.id },
                roomAvatar(room, null),
                h("div.public-room-text",
                    h("strong", room.type === "channel" ? icon("megaphone", "Channel") : null, roomTitle(room, null)),
                    h("span.muted-text", room.description || (room.type === "channel" ? "Channel" : "Group"))),
                joined
                    ? h("a.button.small", { href: `#/room/${room.id}`, onclick: () => document.querySelector("dialog.modal")?.close() }, "Open")
                    : h("button.primary.small", { type: "button", onclick: (e) => join(room, e.currentTarget) }, "Join"));
        });
        list.replaceChildren(...(rows.length ? rows : [h("p.muted-text", "No public rooms yet. Create one and tick “Public”.")]));
    } catch (err) {
        list.replaceChildren(h("p.error-text", `Could not load public rooms: ${err.response?.message || err.message}`));
    }
}

async function join(room, button) {
    button.disabled = true;
    try {
        await pb.collection("chat_room_users").create({ room: room.id, user: myId() });
        document.querySelectorAll("dialog.modal").forEach((d) => { d.close(); d.remove(); });
        await loadRooms();
        toast(`You joined “${roomTitle(room, null)}”.`);
        location.hash = `#/room/${room.id}`;
    } catch (err) {
        button.disabled = false;
        showError(err, "Could not join");
    }
}

// ---- room details -------------------------------------------------------------

export function openRoomInfo(room, membership, members, peer) {
    const body = h("div.room-info");
    const { close } = modal("Details", body);
    const render = () => body.replaceChildren(...infoContent(room, membership, members, peer, close, render));
    render();
}

function infoContent(room, membership, members, peer, close, rerender) {
    const parts = [];
    parts.push(h("div.info-head", roomAvatar(room, peer, "xl"),
        h("h3", roomTitle(room, peer)),
        h("span.muted-text", room.type === "private_messages" ? "Private chat" : `${room.type === "channel" ? "Channel" : "Group"}${room.is_public ? " · public" : ""}`),
        room.description ? h("p", room.description) : null));

    if (can(membership, "can_edit_room")) parts.push(editRoomForm(room), slowModeField(room));

    const mute = h("input", { type: "checkbox", checked: !!membership.muted });
    mute.addEventListener("change", async () => {
        try {
            const updated = await pb.collection("chat_room_users").update(membership.id, { muted: mute.checked });
            Object.assign(membership, updated);
            updateMembership(updated);
        } catch (err) {
            mute.checked = !mute.checked;
            showError(err, "Could not change mute");
        }
    });
    parts.push(h("label.check-row", mute, h("span", "Mute: no unread count in your total")));

    if (room.type !== "private_messages") {
        const sorted = [...members.values()].sort((a, b) => displayName(userById(a.user)).localeCompare(displayName(userById(b.user))));
        parts.push(h("h4", `Members (${members.size})`),
            h("div.members", sorted.map((m) => memberRow(room, membership, m, members, rerender))));
        if (can(membership, "can_add_users")) parts.push(addPeople(room, membership, members, rerender));
        parts.push(...moderationLinks(room, membership));
        parts.push(h("div.danger-zone",
            h("button.small", { type: "button", onclick: () => leave(room, membership, close) }, "Leave"),
            can(membership, "can_delete_room") ? h("button.small.danger", { type: "button", onclick: () => deleteRoom(room, close) }, `Delete ${room.type}`) : null));
    } else if (can(membership, "can_delete_room")) {
        parts.push(h("div.danger-zone", h("button.small.danger", { type: "button", onclick: () => deleteRoom(room, close) }, "Delete chat")));
    }
    return parts;
}

/** The moderation screens the member's permissions open; nothing for the others. */
function moderationLinks(room, membership) {
    const links = [
        can(membership, "can_remove_users") ? h("button.small", { type: "button", onclick: () => openBanList(room) }, "Banned people") : null,
        can(membership, "can_delete_messages") ? h("button.small", { type: "button", onclick: () => openReports(room) }, "Reports") : null,
    ].filter(Boolean);
    return links.length ? [h("h4", "Moderation"), h("div.mod-links", links)] : [];
}

/** Slow mode: each member without can_delete_messages posts once per N seconds. */
function slowModeField(room) {
    const choices = [[0, "Off"], [10, "10 seconds"], [30, "30 seconds"], [60, "1 minute"], [300, "5 minutes"], [3600, "1 hour"]];
    const current = room.slow_mode_seconds ?? 0;
    const select = h("select", { "aria-label": "Slow mode" },
        choices.map(([n, label]) => h("option", { value: String(n), selected: n === current }, label)));
    if (!choices.some(([n]) => n === current)) select.append(h("option", { value: String(current), selected: true }, `${current} seconds`));
    select.addEventListener("change", async () => {
        try {
            Object.assign(room, await pb.collection("chat_rooms").update(room.id, { slow_mode_seconds: Number(select.value) }));
            toast(Number(select.value) ? "Slow mode is on." : "Slow mode is off.");
        } catch (err) {
            select.value = String(room.slow_mode_seconds ?? 0);
            showError(err, "Could not change slow mode");
        }
    });
    return h("label.field-row", h("span", "Slow mode"), select);
}

function memberRow(room, mine, m, members, rerender) {
    const user = userById(m.user);
    const role = roleOf(room, m);
    const actions = [];
    // Changing someone's permissions needs can_add_users and every permission involved.
    const holdsAll = (list) => list.every((p) => can(mine, p));
    if (room.type === "channel" && m.user !== myId() && can(mine, "can_add_users") && holdsAll(m.permissions ?? [])) {
        const editor = m.permissions.includes("can_create_messages");
        actions.push(h("button.small", {
            type: "button",
            onclick: async () => {
                try {
                    const updated = await pb.collection("chat_room_users").update(m.id, { permissions: editor ? [] : editorPermissions(mine) });
                    members.set(m.user, updated);
                    rerender();
                } catch (err) {
                    showError(err, "Could not change the role");
                }
            },
        }, editor ? "Make reader" : "Make editor"));
    }
    if (canRemoveMember(mine, m)) {
        const silenced = m.silenced_until && new Date(m.silenced_until.replace(" ", "T")) > new Date();
        actions.push(h("button.small", {
            type: "button", title: silenced ? "Let them post again" : "They cannot post for an hour (reactions stay allowed)",
            onclick: async () => {
                const until = silenced ? "" : new Date(Date.now() + 3600_000).toISOString().replace("T", " ");
                try {
                    members.set(m.user, await pb.collection("chat_room_users").update(m.id, { silenced_until: until }));
                    rerender();
                } catch (err) {
                    showError(err, "Could not change the silence");
                }
            },
        }, silenced ? "Unsilence" : "Silence 1 h"));
        actions.push(h("button.small.danger", {
            type: "button",
            onclick: () => banDialog(room, roomTitle(room, null), user, () => { members.delete(m.user); rerender(); }),
        }, "Ban"));
        actions.push(h("button.small.danger", {
            type: "button",
            onclick: async () => {
                if (!confirm(`Remove ${displayName(user)} from “${roomTitle(room, null)}”?`)) return;
                try {
                    await pb.collection("chat_room_users").delete(m.id);
                    members.delete(m.user);
                    rerender();
                } catch (err) {
                    showError(err, "Could not remove the member");
                }
            },
        }, "Remove"));
    }
    return h("div.member", { "data-user": m.user }, userAvatar(user, "sm"),
        h("span.member-name", m.user === myId() ? `${displayName(user)} (you)` : [displayName(user), presenceDot(m.user)]),
        role ? h(`span.tag.${role}`, role) : null, ...actions);
}

function addPeople(room, mine, members, rerender) {
    const picker = peoplePicker({ multiple: true, exclude: new Set(members.keys()), label: "Add people" });
    const as = room.type === "channel" ? h("select", { "aria-label": "Add as" },
        h("option", { value: "reader" }, "as readers"), h("option", { value: "editor" }, "as editors")) : null;
    const button = h("button.primary.small", { type: "button" }, "Add");
    button.addEventListener("click", async () => {
        if (!picker.selected.size) return;
        button.disabled = true;
        const batch = pb.createBatch();
        for (const user of picker.selected.values()) {
            const permissions = as ? (as.value === "editor" ? editorPermissions(mine) : []) : undefined;
            batch.collection("chat_room_users").create({ room: room.id, user: user.id, ...(permissions ? { permissions } : {}) });
        }
        try {
            const results = await batch.send();
            for (const r of results) members.set(r.body.user, r.body);
            picker.selected.forEach(rememberUser);
            rerender();
        } catch (err) {
            button.disabled = false;
            showError(err, "Could not add people");
        }
    });
    return h("details.add-people", h("summary", icon("plus"), "Add people"), picker.el, h("div.form-actions", as, button));
}

function editRoomForm(room) {
    const name = h("input", { type: "text", value: room.name, maxlength: "255", "aria-label": "Name" });
    const description = h("input", { type: "text", value: room.description, "aria-label": "Description" });
    const isPublic = h("input", { type: "checkbox", checked: !!room.is_public });
    const form = h("details.edit-room", h("summary", icon("edit"), "Edit details"),
        h("form.stack",
            room.type !== "private_messages" ? h("label", h("span", "Name"), name) : null,
            h("label", h("span", "Description"), description),
            room.type !== "private_messages" ? h("label.check-row", isPublic, h("span", "Public")) : null,
            h("div.form-actions", h("button.primary.small", { type: "submit" }, "Save"))));
    form.querySelector("form").addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
            Object.assign(room, await pb.collection("chat_rooms").update(room.id, {
                name: name.value.trim(), description: description.value.trim(), is_public: isPublic.checked,
            }));
            refreshRoomsSoon();
            toast("Saved.");
        } catch (err) {
            showError(err, "Could not save");
        }
    });
    return form;
}

async function leave(room, membership, close) {
    if (!confirm(`Leave “${roomTitle(room, null)}”?`)) return;
    try {
        await pb.collection("chat_room_users").delete(membership.id);
        close();
        await loadRooms();
        location.hash = "#/";
    } catch (err) {
        showError(err, "Could not leave");
    }
}

async function deleteRoom(room, close) {
    if (!confirm(`Delete “${roomTitle(room, null)}” with all its messages? This cannot be undone.`)) return;
    try {
        await pb.collection("chat_rooms").delete(room.id);
        close();
        await loadRooms();
        location.hash = "#/";
    } catch (err) {
        showError(err, "Could not delete");
    }
}
