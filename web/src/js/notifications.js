// Push notifications: a bell in the sidebar asks for the browser's
// permission (on click, never on load), registers the service worker
// (/sw.js), subscribes with the server's VAPID key (GET /api/chat/push/key)
// and stores the subscription in chat_push_subscriptions. The server then
// pushes new messages of rooms the user does not have open.
import { pb, myId } from "./pb.js";
import { iconButton, showError, toast } from "./dom.js";

const supported = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

/** The sidebar's bell: hidden where push is unsupported; on once subscribed. */
export function notificationsButton() {
    const button = iconButton("bell", "Turn on notifications", () => enable(button));
    if (!supported()) {
        button.hidden = true;
        return button;
    }
    refresh(button).catch((err) => console.error("pbchat: notifications state", err));
    return button;
}

async function refresh(button) {
    const registration = await navigator.serviceWorker.getRegistration("/");
    const subscription = await registration?.pushManager.getSubscription();
    const on = Notification.permission === "granted" && !!subscription;
    button.classList.toggle("on", on);
    button.title = on ? "Notifications are on" : "Turn on notifications";
    button.setAttribute("aria-label", button.title);
    button.setAttribute("aria-pressed", String(on));
    if (on) await store(subscription); // the stored row may have been removed (expired)
}

async function enable(button) {
    try {
        if ((await Notification.requestPermission()) !== "granted") {
            toast("Notifications are blocked in this browser's site settings", "error");
            return;
        }
        const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
        await navigator.serviceWorker.ready;
        let subscription = await registration.pushManager.getSubscription();
        if (!subscription) {
            const { publicKey } = await pb.send("/api/chat/push/key", {});
            subscription = await registration.pushManager.subscribe({
                userVisibleOnly: true,
                applicationServerKey: base64UrlToBytes(publicKey),
            });
        }
        await store(subscription);
        await refresh(button);
    } catch (err) {
        showError(err, "Could not turn on notifications");
    }
}

/** store saves the subscription once per user and endpoint. */
async function store(subscription) {
    const { endpoint, keys } = subscription.toJSON();
    const existing = await pb.collection("chat_push_subscriptions").getList(1, 1, {
        filter: pb.filter("endpoint = {:endpoint}", { endpoint }),
    });
    if (existing.totalItems > 0) return;
    await pb.collection("chat_push_subscriptions").create({ user: myId(), endpoint, p256dh: keys.p256dh, auth: keys.auth });
}

/** Stop pushes to this browser (sign out): the row goes, the subscription stays for the next user. */
export async function forgetSubscription() {
    if (!supported()) return;
    const registration = await navigator.serviceWorker.getRegistration("/");
    const subscription = await registration?.pushManager.getSubscription();
    if (!subscription) return;
    const rows = await pb.collection("chat_push_subscriptions").getFullList({
        filter: pb.filter("endpoint = {:endpoint}", { endpoint: subscription.endpoint }),
    });
    await Promise.all(rows.map((row) => pb.collection("chat_push_subscriptions").delete(row.id)));
}

function base64UrlToBytes(s) {
    const padded = s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}
