// pbchat's web client: boots into sign-in or the chat, routes #/room/{id}.
import { pb, me, displayName } from "./pb.js";
import { h, icon, iconButton, userAvatar, showError } from "./dom.js";
import { renderAuth } from "./auth.js";
import { loadRooms, subscribeRooms, roomListElement, setRoomFilter, onRoomsChange, totalUnread } from "./rooms.js";
import { mountRoomPane, openRoom, closeRoom, reopenRoom } from "./room.js";
import { openNewChat, openBrowse } from "./dialogs.js";

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
                iconButton("globe", "Public rooms", () => openBrowse()),
                iconButton("plus", "New chat", () => openNewChat(), "accent"),
                iconButton("logout", "Sign out", signOut)),
            h("div.side-search", icon("search"), search),
            roomListElement()),
        pane));
    mountRoomPane(pane);
    onRoomsChange(() => {
        const n = totalUnread();
        document.title = n ? `(${n}) pbchat` : "pbchat";
    });

    try {
        await loadRooms();
        await subscribeRooms();
        // After a dropped connection the SDK reconnects and resubscribes; catch up on what was missed.
        let connected = false;
        await pb.realtime.subscribe("PB_CONNECT", () => {
            if (connected) {
                loadRooms().catch((err) => showError(err, "Could not reload your rooms"));
                reopenRoom();
            }
            connected = true;
        });
    } catch (err) {
        showError(err, "Could not load your rooms");
    }
    window.addEventListener("hashchange", route);
    route();
}

function route() {
    const match = location.hash.match(/^#\/room\/([a-zA-Z0-9_]+)$/);
    if (match) openRoom(match[1]);
    else closeRoom();
}

async function signOut() {
    await pb.realtime.unsubscribe().catch(() => {});
    pb.authStore.clear();
    location.hash = "";
    location.reload();
}

boot();
