// Moderation screens: banning (a dialog) and the room's ban list, for
// members holding can_remove_users; reporting a message (a dialog, any
// member) and the reports review, for members holding can_delete_messages.
// The server decides: these screens are hidden from others, and what they
// send is refused in words when it is not allowed.
import { pb, myId, displayName, userById, rememberUser, loadUsers, errorText } from "./pb.js";
import { h, userAvatar, modal, formDialog, toast, parseDate, shortTime } from "./dom.js";

const MAX_REASON = 1000; // chat.MaxReportReason: a report's and a ban's reason

let fieldSeq = 0;
const fieldId = (name) => `${name}-${++fieldSeq}`;

/** "2026-12-01T10:00" of a datetime-local input, as a PocketBase date (UTC). */
const toServerDate = (local) => new Date(local).toISOString().replace("T", " ");

// ---- bans -----------------------------------------------------------------------

/** Ban user from the room: a reason and an optional end. done() once the server agrees. */
export function banDialog(room, roomName, user, done) {
    const hint = fieldId("until-hint");
    const reason = h("input", { type: "text", name: "reason", maxlength: String(MAX_REASON), autocomplete: "off" });
    const until = h("input", { type: "datetime-local", name: "until", "aria-describedby": hint });
    formDialog(`Ban ${displayName(user)}`, {
        intro: `${displayName(user)} is removed from “${roomName}” and cannot join again until unbanned.`,
        fields: [
            h("label", h("span", "Reason"), reason),
            h("div.field", h("label", h("span", "Until"), until), h("p.muted-text", { id: hint }, "Leave empty for a ban without end.")),
        ],
        submitLabel: "Ban",
        danger: true,
        submit: async () => {
            await pb.collection("chat_room_bans").create({
                room: room.id, user: user.id, reason: reason.value.trim(), until: until.value ? toServerDate(until.value) : "",
            });
            toast(`${displayName(user)} is banned from “${roomName}”.`);
            done();
        },
    });
}

/** The room's bans, newest first, each with an Unban button. */
export async function openBanList(room) {
    const list = h("div.mod-list", { "aria-busy": "true" }, h("p.muted-text", "Loading…"));
    modal("Banned people", list);
    try {
        const bans = await pb.collection("chat_room_bans").getFullList({
            filter: pb.filter("room = {:room}", { room: room.id }), sort: "-created", expand: "user,created_by", batch: 200,
        });
        bans.forEach((b) => { rememberUser(b.expand?.user); rememberUser(b.expand?.created_by); });
        await loadUsers(bans.flatMap((b) => [b.user, b.created_by]));
        const empty = () => h("p.muted-text", "Nobody is banned from this room.");
        list.replaceChildren(...(bans.length ? bans.map((b) => banItem(b, () => { if (!list.querySelector(".mod-item")) list.append(empty()); })) : [empty()]));
    } catch (err) {
        list.replaceChildren(h("p.error-text", `Could not load the bans: ${errorText(err)}`));
    }
    list.removeAttribute("aria-busy");
}

function banItem(ban, removed) {
    const user = userById(ban.user);
    const until = parseDate(ban.until);
    const over = until && until <= new Date();
    const error = h("p.error-text", { role: "alert" });
    const item = h("div.mod-item", { "data-ban": ban.id },
        h("div.mod-item-head", userAvatar(user, "sm"), h("strong", displayName(user)), over ? h("span.tag", "ended") : null),
        h("dl.mod-facts",
            h("dt", "Reason"), h("dd", ban.reason || "No reason given"),
            h("dt", "Until"), h("dd", until ? until.toLocaleString() : "No end"),
            ban.created_by ? [h("dt", "By"), h("dd", ban.created_by === myId() ? "You" : displayName(userById(ban.created_by)))] : null,
            h("dt", "Since"), h("dd", shortTime(parseDate(ban.created)))),
        error,
        h("div.mod-actions", h("button.small", {
            type: "button", "aria-label": `Unban ${displayName(user)}`,
            onclick: async (e) => {
                const button = e.currentTarget;
                button.disabled = true;
                try {
                    await pb.collection("chat_room_bans").delete(ban.id);
                    const next = item.nextElementSibling?.querySelector("button") ?? item.previousElementSibling?.querySelector("button");
                    item.remove();
                    removed();
                    (next ?? item.closest("dialog")?.querySelector(".modal-head button"))?.focus();
                    toast(`${displayName(user)} may join again.`);
                } catch (err) {
                    button.disabled = false;
                    error.textContent = `Could not unban: ${errorText(err)}`;
                }
            },
        }, "Unban")));
    return item;
}

// ---- reports --------------------------------------------------------------------

/** Report a message to the room's moderators, with a reason (1 to 1000 characters). */
export function reportDialog(message) {
    const hint = fieldId("reason-hint");
    const author = displayName(userById(message.user));
    const reason = h("textarea", { name: "reason", rows: "3", required: true, maxlength: String(MAX_REASON), "aria-describedby": hint });
    const text = message.text || "Attachment";
    formDialog("Report message", {
        intro: "The room's moderators see the message, your name and your reason.",
        fields: [
            h("blockquote.report-quote", h("strong", author), h("span", text.length > 200 ? text.slice(0, 200) + "…" : text)),
            h("div.field", h("label", h("span", "Reason"), reason), h("p.muted-text", { id: hint }, `What is wrong with it? 1 to ${MAX_REASON} characters.`)),
        ],
        submitLabel: "Report",
        submit: async () => {
            await pb.collection("chat_message_reports").create({ message: message.id, reason: reason.value });
            toast("Reported. The room's moderators will see it.");
        },
    });
}

/** The room's reports, newest first: the message, who reported it and why; delete the message or dismiss. */
export async function openReports(room) {
    const list = h("div.mod-list", { "aria-busy": "true" }, h("p.muted-text", "Loading…"));
    modal("Reports", list);
    try {
        const reports = await pb.collection("chat_message_reports").getFullList({
            filter: pb.filter("room = {:room}", { room: room.id }), sort: "-created", expand: "message,reporter", batch: 200,
        });
        reports.forEach((r) => rememberUser(r.expand?.reporter));
        await loadUsers(reports.flatMap((r) => [r.reporter, r.expand?.message?.user]));
        const empty = () => h("p.muted-text", "No reports: nothing waits for a moderator.");
        const removed = () => { if (!list.querySelector(".mod-item")) list.append(empty()); };
        list.replaceChildren(...(reports.length ? reports.map((r) => reportItem(r, list, removed)) : [empty()]));
    } catch (err) {
        list.replaceChildren(h("p.error-text", `Could not load the reports: ${errorText(err)}`));
    }
    list.removeAttribute("aria-busy");
}

function reportItem(report, list, removed) {
    const message = report.expand?.message;
    const reporter = userById(report.reporter);
    const error = h("p.error-text", { role: "alert" });
    const item = h("div.mod-item", { "data-report": report.id, "data-message": report.message },
        h("div.mod-item-head", userAvatar(reporter, "sm"),
            h("span", h("strong", report.reporter === myId() ? "You" : displayName(reporter)), " reported · ", shortTime(parseDate(report.created)))),
        message
            ? h("blockquote.report-quote", h("strong", message.user === myId() ? "You" : displayName(userById(message.user))), h("span", message.text || "Attachment"))
            : h("p.muted-text", "The message is gone."),
        h("dl.mod-facts", h("dt", "Reason"), h("dd", report.reason)),
        error);
    const act = (label, run) => h(`button.small${label === "Delete message" ? ".danger" : ""}`, {
        type: "button",
        onclick: async (e) => {
            const button = e.currentTarget;
            button.disabled = true;
            try {
                const gone = await run();
                gone.forEach((x) => x.remove());
                removed();
                // Focus stays in the dialog: on the next report's first action, else its close button.
                (list.querySelector(".mod-item button") ?? list.closest("dialog")?.querySelector(".modal-head button"))?.focus();
            } catch (err) {
                button.disabled = false;
                error.textContent = `${label === "Dismiss" ? "Could not dismiss" : "Could not delete the message"}: ${errorText(err)}`;
            }
        },
    }, label);
    item.append(h("div.mod-actions",
        message ? act("Delete message", async () => {
            // The message's reports go with it (cascade): every row naming it.
            await pb.collection("chat_messages").delete(report.message);
            toast("Message deleted.");
            return [...list.querySelectorAll(`.mod-item[data-message="${CSS.escape(report.message)}"]`)];
        }) : null,
        act("Dismiss", async () => {
            await pb.collection("chat_message_reports").delete(report.id);
            toast("Report dismissed.");
            return [item];
        })));
    return item;
}
