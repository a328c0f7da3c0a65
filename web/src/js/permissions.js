// What the signed-in member may do in a room: the membership's permissions
// are the only authority (the server enforces them; the UI only hides the
// controls a member lacks).
import { myId } from "./pb.js";

export const can = (membership, permission) => !!membership?.permissions?.includes(permission);

export const canPost = (m) => can(m, "can_create_messages");

export function canEditMessage(m, message) {
    return can(m, "can_edit_messages") || (message.user === myId() && can(m, "can_edit_own_messages"));
}

export function canDeleteMessage(m, message) {
    return can(m, "can_delete_messages") || (message.user === myId() && can(m, "can_delete_own_messages"));
}

/** Removing another member: can_remove_users and every permission they hold. */
export function canRemoveMember(m, other) {
    if (!other || other.user === myId() || !can(m, "can_remove_users")) return false;
    return (other.permissions ?? []).every((p) => can(m, p));
}

/** A word for a member's role, derived from their permissions. */
export function roleOf(room, membership) {
    const p = membership?.permissions ?? [];
    if (room?.type === "private_messages") return "";
    if (p.includes("can_edit_room") && p.includes("can_delete_room")) return "admin";
    if (room?.type === "channel") return p.includes("can_create_messages") ? "editor" : "reader";
    return p.includes("can_create_messages") ? "" : "read-only";
}

/** The permissions an editor of a channel gets, limited to those the adder holds. */
export function editorPermissions(mine) {
    return ["can_add_users", "can_create_messages", "can_edit_own_messages", "can_delete_own_messages"].filter((p) => can(mine, p));
}
