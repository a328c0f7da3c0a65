// Small DOM helpers: h() builds elements, plus icons, avatars, times,
// toasts and modal dialogs. No framework: screens rebuild the parts that change.
import { avatarURL, displayName, errorText } from "./pb.js";

/**
 * h("button.primary", { onclick }, "Send") → <button class="primary">Send</button>.
 * Attributes starting with "on" become listeners; null/false children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
    if (attrs === null || typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs)) {
        children.unshift(attrs);
        attrs = {};
    }
    const [name, ...classes] = tag.split(".");
    const el = document.createElement(name || "div");
    if (classes.length) el.className = classes.join(" ");
    for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
        else if (key === "class") el.className += (el.className ? " " : "") + value;
        else if (key === "html") el.innerHTML = value; // only for our own icons
        else if (key in el && typeof value !== "string") el[key] = value;
        else el.setAttribute(key, value === true ? "" : value);
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const child of children.flat(Infinity)) {
        if (child === null || child === undefined || child === false) continue;
        el.append(child instanceof Node ? child : String(child));
    }
}

// ---- icons (24×24 strokes) ----------------------------------------------------

const paths = {
    send: '<path d="M22 2 11 13"/><path d="M22 2 15 22l-4-9-9-4 20-7z"/>',
    attach: '<path d="m21.4 11.1-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"/>',
    smile: '<circle cx="12" cy="12" r="10"/><path d="M8 14s1.5 2 4 2 4-2 4-2"/><path d="M9 9h.01M15 9h.01"/>',
    edit: '<path d="M12 20h9"/><path d="M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z"/>',
    trash: '<path d="M3 6h18"/><path d="M8 6V4h8v2"/><path d="M19 6l-1 14H6L5 6"/>',
    bell: '<path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.7 21a2 2 0 0 1-3.4 0"/>',
    bellOff: '<path d="M13.7 21a2 2 0 0 1-3.4 0"/><path d="M18.6 13A17.9 17.9 0 0 1 18 8"/><path d="M6.3 6.3A6 6 0 0 0 6 8c0 7-3 9-3 9h14"/><path d="M18 8a6 6 0 0 0-9.3-5"/><path d="m1 1 22 22"/>',
    users: '<path d="M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2"/><circle cx="9" cy="7" r="4"/><path d="M23 21v-2a4 4 0 0 0-3-3.9M16 3.1a4 4 0 0 1 0 7.8"/>',
    plus: '<path d="M12 5v14M5 12h14"/>',
    search: '<circle cx="11" cy="11" r="8"/><path d="m21 21-4.3-4.3"/>',
    back: '<path d="M19 12H5M12 19l-7-7 7-7"/>',
    logout: '<path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4"/><path d="m16 17 5-5-5-5M21 12H9"/>',
    globe: '<circle cx="12" cy="12" r="10"/><path d="M2 12h20"/><path d="M12 2a15 15 0 0 1 4 10 15 15 0 0 1-4 10 15 15 0 0 1-4-10 15 15 0 0 1 4-10z"/>',
    x: '<path d="M18 6 6 18M6 6l12 12"/>',
    megaphone: '<path d="m3 11 18-5v12L3 14v-3z"/><path d="M11.6 16.8a3 3 0 1 1-5.8-1.6"/>',
    info: '<circle cx="12" cy="12" r="10"/><path d="M12 16v-4M12 8h.01"/>',
    chat: '<path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/>',
    reply: '<path d="m9 17-5-5 5-5"/><path d="M20 18v-2a4 4 0 0 0-4-4H4"/>',
    thread: '<path d="M21 11.5a8.4 8.4 0 0 1-9 8.4 8.5 8.5 0 0 1-3.8-.9L3 21l1.9-5.7A8.5 8.5 0 1 1 21 11.5z"/><path d="M8 10h8M8 14h5"/>',
    pin: '<path d="M12 17v5"/><path d="M9 10.8V4h6v6.8l3 3.2v3H6v-3z"/>',
    flag: '<path d="M4 15s1-1 4-1 5 2 8 2 4-1 4-1V3s-1 1-4 1-5-2-8-2-4 1-4 1z"/><path d="M4 22v-7"/>',
    download: '<path d="M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4"/><path d="m7 10 5 5 5-5M12 15V3"/>',
    file: '<path d="M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z"/><path d="M14 2v6h6"/>',
};

export function icon(name, label) {
    const svg = `<svg viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">${paths[name]}</svg>`;
    const el = h("span.icon", { html: svg });
    if (label) el.setAttribute("aria-label", label);
    return el;
}

/** An icon-only button with a tooltip and an accessible name. */
export function iconButton(name, label, onclick, cls = "") {
    return h(`button.icon-btn${cls ? "." + cls : ""}`, { type: "button", title: label, "aria-label": label, onclick }, icon(name));
}

// ---- avatars ----------------------------------------------------------------

const palette = ["#6366f1", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#ec4899", "#8b5cf6", "#14b8a6"];

function colorFor(id = "") {
    let n = 0;
    for (const c of id) n = (n * 31 + c.charCodeAt(0)) >>> 0;
    return palette[n % palette.length];
}

function initials(name) {
    const words = name.trim().split(/\s+/).filter(Boolean);
    const first = [...(words[0] ?? "?")][0] ?? "?";
    const second = words.length > 1 ? [...words[words.length - 1]][0] : "";
    return (first + second).toUpperCase();
}

/** A round avatar: the picture when there is one, else initials on a colour. */
export function avatar(name, id, imageURL = "", size = "") {
    const el = h(`span.avatar${size ? "." + size : ""}`, { style: `background:${colorFor(id)}`, "aria-hidden": "true" });
    if (imageURL) el.append(h("img", { src: imageURL, alt: "", loading: "lazy" }));
    else el.textContent = initials(name || "?");
    return el;
}

export function userAvatar(user, size = "") {
    return avatar(displayName(user), user?.id, avatarURL(user), size);
}

// ---- times ------------------------------------------------------------------

/** PocketBase dates ("2025-01-02 03:04:05.678Z") as Date. */
export const parseDate = (s) => (s ? new Date(s.replace(" ", "T")) : null);

const sameDay = (a, b) => a.toDateString() === b.toDateString();

export function clockTime(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Short time for lists: 14:05, Tue, 3 Mar. */
export function shortTime(date) {
    if (!date) return "";
    const now = new Date();
    if (sameDay(date, now)) return clockTime(date);
    if (now - date < 6 * 86400_000) return date.toLocaleDateString([], { weekday: "short" });
    return date.toLocaleDateString([], { day: "numeric", month: "short" });
}

/** Day headings in a timeline: Today, Yesterday, Monday 3 March. */
export function dayLabel(date) {
    const now = new Date();
    if (sameDay(date, now)) return "Today";
    if (sameDay(date, new Date(now - 86400_000))) return "Yesterday";
    const sameYear = date.getFullYear() === now.getFullYear();
    return date.toLocaleDateString([], { weekday: "long", day: "numeric", month: "long", ...(sameYear ? {} : { year: "numeric" }) });
}

// ---- toasts and dialogs -----------------------------------------------------

/** Shows an error (a PocketBase error or text) in words until dismissed or 8 s pass. */
export function showError(err, context = "") {
    const text = typeof err === "string" ? err : errorText(err);
    if (typeof err !== "string") console.error(context, err);
    toast(context ? `${context}: ${text}` : text, "error");
}

export function toast(text, kind = "info") {
    const box = document.getElementById("toasts");
    const el = h(`div.toast.${kind}`, { role: kind === "error" ? "alert" : "status" },
        h("span", text),
        iconButton("x", "Dismiss", () => el.remove()));
    box.append(el);
    setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

/**
 * Opens a modal dialog with a title and content; returns { el, close }.
 * Closing by Esc, the × or a click outside calls onClose.
 */
export function modal(title, content, { onClose, wide = false } = {}) {
    const dialog = h(`dialog.modal${wide ? ".wide" : ""}`, { "aria-label": title },
        h("header.modal-head", h("h2", title), iconButton("x", "Close", () => close())),
        h("div.modal-body", content));
    const opener = document.activeElement; // Escape (or any close) returns focus here
    const close = () => {
        if (!dialog.isConnected) return;
        dialog.close();
        dialog.remove();
        onClose?.();
        if (document.activeElement && document.activeElement !== document.body) return;
        // Back to the opener; if it is gone (its list was redrawn), into the dialog below, if any.
        if (opener?.isConnected) opener.focus();
        else [...document.querySelectorAll("dialog.modal[open]")].pop()?.querySelector(".modal-head button")?.focus();
    };
    dialog.addEventListener("cancel", (e) => { e.preventDefault(); close(); });
    dialog.addEventListener("click", (e) => { if (e.target === dialog) close(); });
    document.body.append(dialog);
    dialog.showModal();
    return { el: dialog, close };
}

/**
 * A modal form: labelled fields, Cancel and a submit button, and the
 * server's refusal in words inside the dialog, which stays open so the
 * input can be fixed. submit() resolves to close the dialog, or throws (a
 * PocketBase error, or words) to refuse.
 */
export function formDialog(title, { intro, fields, submitLabel, danger = false, submit }) {
    const error = h("p.error-text.form-error", { role: "alert" });
    const button = h(`button.primary${danger ? ".danger-fill" : ""}`, { type: "submit" }, submitLabel);
    const form = h("form.stack.form-dialog",
        intro ? h("p.form-intro", intro) : null,
        fields, error,
        h("div.form-actions", h("button", { type: "button", onclick: () => close() }, "Cancel"), button));
    const { el, close } = modal(title, form);
    form.addEventListener("submit", async (e) => {
        e.preventDefault();
        error.textContent = "";
        button.disabled = true;
        try {
            await submit();
            close();
        } catch (err) {
            error.textContent = refusalText(form, err);
            button.disabled = false;
            (form.querySelector("[aria-invalid=true]") ?? form.querySelector("input, textarea, select"))?.focus();
        }
    });
    form.addEventListener("input", (e) => e.target.removeAttribute?.("aria-invalid"));
    el.querySelector("input, textarea, select")?.focus();
    return { el, close };
}

/**
 * A refusal in words: the message of each field the server names, by the
 * label of the input with that name (marked invalid), else the whole error.
 */
function refusalText(form, err) {
    if (typeof err === "string") return err;
    const fields = Object.entries(err?.response?.data ?? {}).filter(([, v]) => v?.message);
    const named = fields.map(([name, v]) => {
        const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
        if (!input) return null;
        input.setAttribute("aria-invalid", "true");
        const label = input.closest("label")?.querySelector("span")?.textContent ?? name;
        const words = v.message.replace(/\.*$/, ".");
        return words.toLowerCase().startsWith(label.toLowerCase()) ? words : `${label}: ${words}`;
    });
    if (named.length && named.every(Boolean)) return named.join(" ");
    return errorText(err);
}
