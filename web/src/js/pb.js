// The PocketBase client and the few helpers every screen needs: who am I,
// what an error says, file tokens, and a cache of users by id.
import PocketBase from "../vendor/pocketbase.es.mjs";

export const pb = new PocketBase(location.origin);
// Two screens may load the same list at once; let both requests finish.
pb.autoCancellation(false);

export const me = () => pb.authStore.record;
export const myId = () => pb.authStore.record?.id ?? "";

/** The words of a failed request: PocketBase's message plus its field errors. */
export function errorText(err) {
    if (!err) return "Something went wrong.";
    const res = err.response;
    if (err.status === 0 && !err.isAbort) {
        return "Cannot reach the server. Check your connection and try again.";
    }
    if (res && (res.message || res.data)) {
        const fields = Object.entries(res.data ?? {})
            .filter(([, v]) => v && typeof v === "object" && v.message)
            .map(([k, v]) => `${k}: ${v.message}`);
        const message = res.message || `Request failed (${err.status}).`;
        return fields.length ? `${message} (${fields.join("; ")})` : message;
    }
    return err.message || String(err);
}

// Protected files (chat pictures) need a short-lived token on their URL.
// PocketBase's tokens last a few minutes; take a new one well before that.
let token = { value: "", at: 0 };
export async function fileToken() {
    if (!token.value || Date.now() - token.at > 90_000) {
        token = { value: await pb.files.getToken(), at: Date.now() };
    }
    return token.value;
}

/** URL of a protected chat_media file, optionally a thumbnail ("480x0"). */
export function mediaURL(media, tokenValue, thumb) {
    return pb.files.getURL(media, media.file, { token: tokenValue, ...(thumb ? { thumb } : {}) });
}

// ---- users -----------------------------------------------------------------

const users = new Map(); // id → users record

export function displayName(user) {
    if (!user) return "Someone";
    return user.name || user.email?.split("@")[0] || `user ${user.id.slice(0, 5)}`;
}

/** The cached user, or a placeholder until loadUsers brings it. */
export function userById(id) {
    if (id === myId()) return me();
    return users.get(id) ?? { id, name: "", placeholder: true };
}

export function rememberUser(user) {
    if (user?.id) users.set(user.id, user);
}

/** Loads the users not cached yet (one request for all of them). */
export async function loadUsers(ids) {
    const missing = [...new Set(ids)].filter((id) => id && id !== myId() && !users.has(id));
    if (!missing.length) return;
    const filter = missing.map((id, i) => pb.filter(`id = {:id${i}}`, { [`id${i}`]: id })).join(" || ");
    try {
        const found = await pb.collection("users").getFullList({ filter, batch: 200 });
        found.forEach(rememberUser);
    } catch {
        // The users collection may not let us list others; names fall back to placeholders.
    }
}

/** Users matching a name, or one user by exact id, for the people pickers. */
export async function searchUsers(query) {
    const q = query.trim();
    const result = await pb.collection("users").getList(1, 20, {
        filter: q ? pb.filter("id != {:me} && (name ~ {:q} || email = {:q} || id = {:q})", { me: myId(), q }) : pb.filter("id != {:me}", { me: myId() }),
        sort: "name",
        skipTotal: true,
    });
    result.items.forEach(rememberUser);
    return result.items;
}

export function avatarURL(user) {
    return user?.avatar ? pb.files.getURL(user, user.avatar, { thumb: "100x100" }) : "";
}
