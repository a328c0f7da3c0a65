// pbchat's web client: boots into sign-in or the chat, routes #/room/{id},
// and keeps the page in step with the server across reconnects (sync.js).
import { pb, me, displayName } from "./pb.js";
import { h, icon, iconButton, userAvatar, showError } from "./dom.js";
import { renderAuth } from "./auth.js";
import { loadRooms, subscribeRooms, roomListElement, setRoomFilter, onRoomsChange, totalUnread, applyToRooms } from "./rooms.js";
import { mountRoomPane, openRoom, closeRoom, reopenRoom, suspendRoom, resumeRoom, applyToRoom } from "./room.js";
import { openNewChat, openBrowse } from "./dialogs.js";
import { notificationsButton, forgetSubscription } from "./notifications.js";
import { initCursor, markStale, followConnection, connectionStatus, setOffline } from "./sync.js";
import { startPresence } from "./presence.js";
import { openSearch } from "./search.js";

const root = document.getElementById("app");

async function boot() {
    if (pb.authStore.isValid) {
        try {
            await pb.collection("users").authRefresh();
        } catch (err) {
            if ([401, 403, 404].includes(err.status)) pb.authStore.clear();
            else showError(err, "Could not reach the server");
        }
    }
    if (pb.authStore.isValid && pb.authStore.record?.collectionName === "users") startChat();
    else renderAuth(root, () => location.reload());
}

async function startChat() {
    const search = h("input.search", { type: "search", placeholder: "Search chats", "aria-label": "Search chats" });
    search.addEventListener("input", () => setRoomFilter(search.value));
    const pane = h("main.pane");
    root.replaceChildren(h("div.app",
        h("aside.sidebar",
            h("header.side-head",
                h("div.me", userAvatar(me(), "sm"), h("span.me-name", displayName(me()))),
                iconButton("search", "Search messages", () => openSearch()),
                iconButton("globe", "Public rooms", () => openBrowse()),
                notificationsButton(),
                iconButton("plus", "New chat", () => openNewChat(), "accent"),
                iconButton("logout", "Sign out", signOut)),
            h("div.side-search", icon("search"), search),
            roomListElement()),
        pane,
        connectionStatus()));
    mountRoomPane(pane);
    onRoomsChange(() => {
        const n = totalUnread();
        document.title = n ? `(${n}) pbchat` : "pbchat";
    });

    try {
        await initCursor().catch((err) => console.error("pbchat: no sync cursor", err)); // before the rooms load
        await loadRooms();
    } catch (err) {
        markStale(); // the first catch-up loads them
        showError(err, "Could not load your rooms");
    }
    startRealtime();
    window.addEventListener("hashchange", route);
    route();
}

// The stock subscriptions and PB_CONNECT go in one subscribe request. After
// every connect (the first one too) sync.js catches up from the cursor.
async function startRealtime() {
    try {
        await Promise.all([
            followConnection({
                apply: (event) => {
                    applyToRooms(event);
                    applyToRoom(event);
                },
                reload: async () => {
                    await loadRooms();
                    reopenRoom();
                },
                suspend: suspendRoom,
                resume: resumeRoom,
            }),
            subscribeRooms(),
            startPresence(),
        ]);
    } catch (err) {
        // The first connect failed (the SDK retries only connections it once had): try again.
        console.error("pbchat: realtime connect failed", err);
        setOffline(true);
        markStale();
        await pb.realtime.unsubscribe().catch(() => {});
        setTimeout(startRealtime, 3000);
    }
}

function route() {
    const match = location.hash.match(/^#\/room\/([a-zA-Z0-9_]+)$/);
    if (match) openRoom(match[1]);
    else closeRoom();
}

async function signOut() {
    await pb.realtime.unsubscribe().catch(() => {});
    await forgetSubscription().catch(() => {}); // this browser stops getting this user's pushes
    pb.authStore.clear();
    location.hash = "";
    location.reload();
}

boot();
