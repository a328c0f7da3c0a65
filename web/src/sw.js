// pbchat's service worker: shows the notifications pbchat pushes (a new
// message in a room the user is away from) and opens the room on click.
// The push payload is the server's notification JSON:
//   {type: "message.created", user, room, roomName, message: {id, room, user, userName, text, created}, count, mention}

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
    let note = {};
    try {
        note = event.data ? event.data.json() : {};
    } catch {
        note = { message: { text: event.data?.text() ?? "" } };
    }
    event.waitUntil(show(note));
});

async function show(note) {
    const message = note.message ?? {};
    const who = message.userName || "Someone";
    const where = note.roomName ? ` in ${note.roomName}` : "";
    const title = note.count > 1 ? `${note.count} new messages${where}` : `${who}${where}`;
    const body = note.count > 1 ? `${who}: ${message.text ?? ""}` : message.text ?? "";
    await self.registration.showNotification(title, {
        body,
        tag: `pbchat-room-${note.room ?? ""}`, // one notification per room, replaced by the next
        renotify: true,
        icon: "/favicon.svg",
        data: { room: note.room ?? "" },
    });
}

self.addEventListener("notificationclick", (event) => {
    event.notification.close();
    const room = event.notification.data?.room;
    const url = new URL(room ? `/#/room/${room}` : "/", self.location.origin).href;
    event.waitUntil((async () => {
        const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
        for (const client of windows) {
            if (new URL(client.url).origin === self.location.origin) {
                await client.focus();
                if ("navigate" in client) await client.navigate(url);
                return;
            }
        }
        await self.clients.openWindow(url);
    })());
});
