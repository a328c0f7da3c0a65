// pbchat's web client in a real browser: Playwright (playwright-core) drives
// Debian's Chromium against a real `pbchat serve` on an empty data dir.
// Two people, Ann and Ben, sign up through the page and chat in two browser
// contexts; everything the second one sees arrives live, without a reload.
//
//   cd e2e/web && npm ci && npm test        (needs pb_public built: make web)
//   PBCHAT_SCREENSHOTS=1 npm test           also writes docs/screenshots/*.png
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { launchChromium } from "../lib/browser.mjs";
import { startServer, repoRoot, publicDir } from "../../lib/server.mjs";
import { eventually } from "../lib/people.mjs";
import { landscapePNG } from "../lib/picture.mjs";

const DESKTOP = { width: 1200, height: 760 };
const PHONE = { width: 390, height: 780 };
const shotsDir = process.env.PBCHAT_SCREENSHOTS
    ? path.join(repoRoot, "docs", "screenshots")
    : fs.mkdtempSync(path.join(os.tmpdir(), "pbchat-shots-"));

let server, browser;
let ann, ben; // { context, page, name }
const pageErrors = [];
const clientErrors = []; // the client's own console.error lines ("pbchat: …"): a sync that failed, a resubscribe refused


const text = (locator) => locator.textContent({ timeout: 1000 });
const roomItem = (page, name) => page.locator(".room-item").filter({ has: page.locator(".room-name-text").getByText(name, { exact: true }) });
const message = (page, words) => page.locator(".msg", { hasText: words });
const badge = (page, room) => text(roomItem(page, room).locator(".badge")).catch(() => "");

let base; // Ben's unread count of the new group before Ann writes

const unreadOnServer = (page) => page.evaluate(async () => {
    const { token } = JSON.parse(localStorage.getItem("pocketbase_auth"));
    return (await fetch("/api/chat/unread", { headers: { Authorization: token } })).json();
});
const roomIdOf = (page, name) => roomItem(page, name).getAttribute("data-room");

/** A records-API call from Node as the person signed in on their page (the SDK keeps the token in localStorage). */
async function asPerson(person, method, urlPath, body) {
    const token = await person.page.evaluate(() => JSON.parse(localStorage.getItem("pocketbase_auth")).token);
    const res = await fetch(server.url + urlPath, {
        method,
        headers: { Authorization: token, ...(body ? { "Content-Type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
    });
    const answer = await res.text();
    if (!res.ok) assert.fail(`${method} ${urlPath}: ${res.status} ${answer}`);
    return answer ? JSON.parse(answer) : null;
}

/** The open room's messages as the page shows them, oldest first. */
const shownMessages = (page) => page.locator(".timeline .msg").evaluateAll((els) => els.map((el) => ({
    id: el.dataset.id,
    text: el.querySelector(".msg-text")?.textContent ?? "",
    edited: !!el.querySelector(".edited"),
})));

/** Waits until the room's unread badge in page's list reads n (as a person sees it, no reload). */
async function waitBadge(page, room, n, who) {
    let seen;
    try {
        await eventually(async () => (seen = await badge(page, room)) === String(n), `${who}'s badge ${n} on ${room}`);
    } catch (err) {
        const server = await unreadOnServer(page).catch((e) => e.message);
        const list = await page.locator(".room-list").innerText().catch(() => "");
        assert.fail(`${err.message}; the badge read ${JSON.stringify(seen)}; the list: ${JSON.stringify(list)}; /api/chat/unread: ${JSON.stringify(server)}`);
    }
}

async function newPerson(name, email, viewport = DESKTOP) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
    page.on("console", (msg) => msg.type() === "error" && msg.text().startsWith("pbchat:") && clientErrors.push(`${name}: ${msg.text()}`));
    page.on("dialog", (dialog) => dialog.accept()); // "Delete this message?"
    await page.goto(server.url);
    await page.getByRole("button", { name: "Create an account" }).click();
    await page.getByLabel("Name").fill(name);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("correct horse battery");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.locator(".me-name", { hasText: name }).waitFor();
    return { context, page, name, email };
}

async function openRoom(person, name) {
    await roomItem(person.page, name).click();
    await person.page.locator(".room-head h1", { hasText: name }).waitFor();
}

async function send(person, words) {
    await person.page.getByLabel("Message", { exact: true }).fill(words);
    await person.page.getByLabel("Message", { exact: true }).press("Enter");
    await message(person.page, words).waitFor();
}

async function react(person, words, emoji) {
    const msg = message(person.page, words);
    await msg.hover();
    await msg.getByRole("button", { name: "Add reaction" }).click();
    await person.page.locator(".picker button", { hasText: emoji }).click();
}

const reactionCount = (person, words, emoji) =>
    text(message(person.page, words).locator(`.reaction[data-reaction="${emoji}"] .count`)).catch(() => "0");

// Each step gets a minute; building the Go app on a cold cache may take longer.
const step = (name, fn) => it(name, { timeout: 60_000 }, fn);

describe("pbchat web client", () => {
    before(async () => {
        server = await startServer({ publicDir });
        browser = await launchChromium();
    }, { timeout: 600_000 });

    after(async () => {
        await browser?.close();
        await server?.stop();
    });

    step("shows a wrong password in words, then two people sign up on an empty app", async () => {
        const context = await browser.newContext({ viewport: DESKTOP });
        const page = await context.newPage();
        await page.goto(server.url);
        await page.getByLabel("Email").fill("nobody@example.test");
        await page.getByLabel("Password").fill("wrong password");
        await page.getByRole("button", { name: "Sign in" }).click();
        const error = await eventually(() => text(page.locator(".auth .error-text")), "the sign-in error");
        assert.match(error, /authenticate/i);
        await context.close();

        ann = await newPerson("Ann Archer", "ann@example.test");
        ben = await newPerson("Ben Baker", "ben@example.test");
        await ben.page.getByText("No conversations yet").waitFor();
    });

    step("Ann creates a group with Ben; it appears in Ben's list with an unread badge", async () => {
        const { page } = ann;
        await page.getByRole("button", { name: "New chat" }).click();
        await page.getByRole("tab", { name: "Group" }).click();
        await page.getByLabel("Name").fill("Project Falcon");
        await page.getByLabel("Description").fill("Launch planning");
        await page.getByLabel("Add people").fill("Ben");
        await page.locator(".person", { hasText: "Ben Baker" }).click();
        await page.getByRole("button", { name: "Create group" }).click();
        await page.locator(".room-head h1", { hasText: "Project Falcon" }).waitFor();
        await message(page, "Ann Archer created a chat").waitFor();

        // Ben's count starts at what the server says: 1 for "Ann Archer created a chat",
        // or 0 while the server misses a message written in the same millisecond as the
        // membership (one batch writes both; reported, see e2e/web/README.md).
        await roomItem(ben.page, "Project Falcon").waitFor();
        base = (await unreadOnServer(ben.page)).rooms[await roomIdOf(ben.page, "Project Falcon")];
        assert.ok(base === 0 || base === 1, `unread after creation: ${base}`);
        if (base) await waitBadge(ben.page, "Project Falcon", base, "Ben");
    });

    step("Ann sends a text and a picture; Ben's badge and last message follow live", async () => {
        const { page } = ann;
        await send(ann, "Hello Ben! Here is the plan.");
        await waitBadge(ben.page, "Project Falcon", base + 1, "Ben");
        assert.match(await text(roomItem(ben.page, "Project Falcon").locator(".room-preview")), /Ann Archer: Hello Ben!/);

        await page.locator("input[type=file]").setInputFiles({ name: "landing.png", mimeType: "image/png", buffer: landscapePNG() });
        await page.locator(".previews .preview img").waitFor(); // preview before sending
        await send(ann, "The new landing page 🎨");
        assert.equal(await page.locator(".previews .preview").count(), 0, "previews clear after sending");
        await eventually(() => message(page, "landing page").locator(".pic img").evaluate((img) => img.complete && img.naturalWidth),
            "Ann's thumbnail to load");

        await waitBadge(ben.page, "Project Falcon", base + 2, "Ben");
    });

    step("Ben opens the room: history with the picture (thumbnail, full size on click), badge gone", async () => {
        const { page } = ben;
        await openRoom(ben, "Project Falcon");
        await message(page, "Hello Ben! Here is the plan.").waitFor();
        const thumbWidth = await eventually(() => message(page, "landing page").locator(".pic img")
            .evaluate((img) => img.complete && img.naturalWidth), "Ben's thumbnail");
        assert.equal(thumbWidth, 480, "the timeline shows the 480x0 thumbnail");

        await message(page, "landing page").locator(".pic").click();
        const fullWidth = await eventually(() => page.locator("dialog .lightbox img").evaluate((img) => img.complete && img.naturalWidth),
            "the full picture");
        assert.equal(fullWidth, 640, "a click shows the original");
        await page.keyboard.press("Escape");
        await page.locator("dialog").waitFor({ state: "detached" });

        await eventually(async () => (await roomItem(page, "Project Falcon").locator(".badge").count()) === 0, "the badge to clear");
        // The server agrees: the room is read.
        assert.equal((await unreadOnServer(page)).total, 0);
    });

    step("Ben reacts and Ann sees it live; Ann adds and removes her own", async () => {
        await react(ben, "Hello Ben!", "👍");
        await eventually(async () => (await reactionCount(ann, "Hello Ben!", "👍")) === "1", "Ann to see Ben's 👍");
        await react(ben, "landing page", "❤️");
        await eventually(async () => (await reactionCount(ann, "landing page", "❤️")) === "1", "Ann to see Ben's ❤️");

        const chip = message(ann.page, "Hello Ben!").locator('.reaction[data-reaction="👍"]');
        await chip.click(); // Ann joins in
        await eventually(async () => (await reactionCount(ben, "Hello Ben!", "👍")) === "2", "Ben to see 👍 2");
        await chip.click(); // and takes hers back
        await eventually(async () => (await reactionCount(ben, "Hello Ben!", "👍")) === "1", "Ben to see 👍 1");
        await eventually(async () => (await chip.getAttribute("aria-pressed")) === "false", "Ann's 👍 to show as not hers");
    });

    step("typing, replies, edits and deletes travel live", async () => {
        await ben.page.getByLabel("Message", { exact: true }).pressSequentially("Looks gr");
        await eventually(async () => /Ben Baker is typing/.test(await text(ann.page.locator(".typing"))), "Ann to see Ben typing");
        await ben.page.getByLabel("Message", { exact: true }).fill("Looks great! Shipping it Friday? 🚀");
        await ben.page.getByLabel("Message", { exact: true }).press("Enter");
        await message(ann.page, "Shipping it Friday?").waitFor();
        await react(ann, "Shipping it Friday?", "🎉");

        // Ann edits her own message; Ben cannot edit it (no control offered).
        const hello = message(ann.page, "Hello Ben!");
        await hello.hover();
        await hello.getByRole("button", { name: "Edit message" }).click();
        await ann.page.getByLabel("Edited text").fill("Hello Ben! Here is the plan for Friday.");
        await ann.page.getByLabel("Edited text").press("Enter");
        await eventually(() => message(ben.page, "plan for Friday").locator(".edited").count(), "Ben to see the edit");
        assert.equal(await message(ben.page, "plan for Friday").getByRole("button", { name: "Edit message" }).count(), 0);
        assert.equal(await message(ben.page, "plan for Friday").getByRole("button", { name: "Delete message" }).count(), 0);

        await send(ann, "oops, wrong room");
        await message(ben.page, "oops, wrong room").waitFor();
        const oops = message(ann.page, "oops, wrong room");
        await oops.hover();
        await oops.getByRole("button", { name: "Delete message" }).click();
        await message(ben.page, "oops, wrong room").waitFor({ state: "detached" });
    });

    step("a channel reader has no composer, and the server refuses a direct post", async () => {
        const { page } = ann;
        await page.getByRole("button", { name: "New chat" }).click();
        await page.getByRole("tab", { name: "Channel" }).click();
        await page.getByLabel("Name").fill("Falcon news");
        await page.getByLabel("Add readers").fill("Ben");
        await page.locator(".person", { hasText: "Ben Baker" }).click();
        await page.getByRole("button", { name: "Create channel" }).click();
        await page.locator(".room-head h1", { hasText: "Falcon news" }).waitFor();
        await roomItem(ben.page, "Falcon news").waitFor();
        const before = (await unreadOnServer(ben.page)).rooms[await roomIdOf(ben.page, "Falcon news")];
        await send(ann, "We launch on Friday at 10:00.");
        await waitBadge(ben.page, "Falcon news", before + 1, "Ben");
        await openRoom(ben, "Falcon news");
        await message(ben.page, "We launch on Friday").waitFor();
        assert.equal(await ben.page.getByLabel("Message", { exact: true }).count(), 0, "a reader gets no composer");
        assert.match(await text(ben.page.locator(".no-composer")), /read and react/);
        await react(ben, "We launch on Friday", "👍"); // readers may react
        await eventually(async () => (await reactionCount(ann, "We launch on Friday", "👍")) === "1", "Ann to see the reader's 👍");

        const roomId = await ben.page.evaluate(() => location.hash.split("/").pop());
        const refused = await ben.page.evaluate(async (room) => {
            const { token } = JSON.parse(localStorage.getItem("pocketbase_auth"));
            const res = await fetch("/api/collections/chat_messages/records", {
                method: "POST",
                headers: { Authorization: token, "Content-Type": "application/json" },
                body: JSON.stringify({ room, text: "me too" }),
            });
            return { status: res.status, body: await res.json() };
        }, roomId);
        assert.equal(refused.status, 403);
        assert.match(refused.body.message, /can_create_messages/);

        // Ben mutes the channel: the bell says so and the list shows it.
        await ben.page.getByRole("button", { name: "Mute room" }).click();
        await ben.page.getByRole("button", { name: "Unmute room" }).waitFor();
        await roomItem(ben.page, "Falcon news").locator('[aria-label="Muted"]').waitFor();
    });

    step("Ben starts a private chat with Ann and joins her public room", async () => {
        const { page } = ben;
        await page.getByRole("button", { name: "New chat" }).click();
        await page.getByLabel("Search people").fill("Ann");
        await page.locator(".person", { hasText: "Ann Archer" }).click();
        await page.locator(".room-head h1", { hasText: "Ann Archer" }).waitFor();
        await send(ben, "Quick question about Friday: who brings the demo laptop?");
        await waitBadge(ann.page, "Ben Baker", 1, "Ann");

        await ann.page.getByRole("button", { name: "New chat" }).click();
        await ann.page.getByRole("tab", { name: "Group" }).click();
        await ann.page.getByLabel("Name").fill("Open lobby");
        await ann.page.getByLabel("Description").fill("Anyone can drop in");
        await ann.page.getByText("Public: anyone can find the group").click();
        await ann.page.getByRole("button", { name: "Create group" }).click();
        await ann.page.locator(".room-head h1", { hasText: "Open lobby" }).waitFor();
        // History for paging: 35 messages in one batch request.
        const lobbyId = await ann.page.evaluate(() => location.hash.split("/").pop());
        const status = await ann.page.evaluate(async (room) => {
            const { token } = JSON.parse(localStorage.getItem("pocketbase_auth"));
            const requests = Array.from({ length: 35 }, (_, i) => ({
                method: "POST", url: "/api/collections/chat_messages/records", body: { room, text: `Lobby message ${i + 1}` },
            }));
            const res = await fetch("/api/batch", {
                method: "POST", headers: { Authorization: token, "Content-Type": "application/json" }, body: JSON.stringify({ requests }),
            });
            return res.status;
        }, lobbyId);
        assert.equal(status, 200);

        await page.getByRole("button", { name: "Public rooms" }).click();
        await page.locator(".public-room", { hasText: "Open lobby" }).getByRole("button", { name: "Join" }).click();
        await page.locator(".room-head h1", { hasText: "Open lobby" }).waitFor();
        // The newest page first; older pages load when scrolled to the top.
        await message(page, "Lobby message 35").waitFor();
        const shown = await page.locator(".msg").count();
        assert.ok(shown <= 30, `the first page holds at most 30 messages (${shown})`);
        assert.equal(await page.locator(".timeline-start").count(), 0, "the beginning is not loaded yet");
        await eventually(async () => {
            await page.locator(".timeline").evaluate((el) => (el.scrollTop = 0));
            return (await page.locator(".msg-text").getByText("Lobby message 1", { exact: true }).count()) === 1;
        }, "the oldest lobby message after scrolling up");
        await page.locator(".timeline-start").waitFor(); // the beginning of the room
        await send(ben, "Hi all 👋");
        await message(ann.page, "Hi all").waitFor();
    });

    step("takes the screenshots", async () => {
        // Ann writes in three rooms while Ben reads the group: his list shows the badges.
        await openRoom(ben, "Project Falcon");
        await send(ann, "Ben, can you check the copy on the pricing page?");
        await openRoom(ann, "Falcon news");
        await send(ann, "Reminder: code freeze on Thursday.");
        await openRoom(ann, "Ben Baker");
        await send(ann, "I'll bring it!");

        // Desktop: the room list with badges, and a room with a picture and reactions.
        await waitBadge(ben.page, "Ann Archer", 1, "Ben");
        await waitBadge(ben.page, "Open lobby", 1, "Ben");
        await message(ben.page, "landing page").locator(".pic img").evaluate((img) => img.decode());
        await ben.page.mouse.move(0, 0);
        await ben.page.locator(".toast").evaluateAll((toasts) => toasts.forEach((t) => t.remove()));
        await ben.page.screenshot({ path: path.join(shotsDir, "room.png") });

        // Phone width: the room list, then the same room.
        const phone = await ben.context.newPage();
        await phone.setViewportSize(PHONE);
        phone.on("pageerror", (err) => pageErrors.push(`Ben (phone): ${err.message}`));
        await phone.goto(server.url);
        await waitBadge(phone, "Ann Archer", 1, "Ben");
        await phone.screenshot({ path: path.join(shotsDir, "rooms-phone.png") });
        await openRoom({ page: phone }, "Project Falcon");
        await message(phone, "landing page").locator(".pic img").evaluate((img) => img.decode());
        await phone.mouse.move(0, 0);
        await phone.screenshot({ path: path.join(shotsDir, "room-phone.png") });
        await phone.close();
        for (const f of ["room.png", "rooms-phone.png", "room-phone.png"]) {
            assert.ok(fs.statSync(path.join(shotsDir, f)).size > 10_000, `${f} was written`);
        }
    });

    step("the server restarts: the open room shows what was posted, edited and deleted meanwhile, without a reload", async () => {
        const { page } = ann;
        await openRoom(ann, "Ben Baker");
        const roomId = await page.evaluate(() => location.hash.split("/").pop());
        const post = (text) => asPerson(ben, "POST", "/api/collections/chat_messages/records", { room: roomId, text });
        const edit = (m, text) => asPerson(ben, "PATCH", `/api/collections/chat_messages/records/${m.id}`, { text });
        const remove = (m) => asPerson(ben, "DELETE", `/api/collections/chat_messages/records/${m.id}`);
        const before = [];
        for (const text of ["Before the restart: one", "Before the restart: two", "Before the restart: three"]) {
            before.push(await post(text));
            await message(page, text).waitFor(); // live
        }
        // A group of Ben's that Ann is in: Ben will remove her while she is away.
        const annId = await page.evaluate(() => JSON.parse(localStorage.getItem("pocketbase_auth")).record.id);
        const side = await asPerson(ben, "POST", "/api/collections/chat_rooms/records", { type: "group", name: "Ben's side project" });
        const annInSide = await asPerson(ben, "POST", "/api/collections/chat_room_users/records", { room: side.id, user: annId });
        await roomItem(page, "Ben's side project").waitFor(); // live
        await page.evaluate(() => (window.sameDocument = true)); // gone if the page reloads
        const status = page.getByRole("status");
        assert.equal((await status.textContent()).trim(), "", "no offline status while connected");

        // Ann's page may not reconnect until the test lets it: the gap is real.
        const realtime = "**/api/realtime";
        await ann.context.route(realtime, (route) => route.abort());
        await server.restart(async () => {
            // The server is down: the page says so.
            await eventually(async () => /offline/i.test(await status.textContent()), "the offline status");
        });

        // The server is back; Ann's page is still cut off while Ben writes.
        const during1 = await post("During the gap: one");
        const during2 = await post("During the gap: two");
        await edit(before[0], "Before the restart: one, edited during the gap");
        await edit(during1, "During the gap: one, edited");
        await remove(before[1]);
        await remove(during2);
        await asPerson(ben, "POST", "/api/collections/chat_message_reactions/records", { message: before[2].id, reaction: "👍" });
        await asPerson(ben, "DELETE", `/api/collections/chat_room_users/records/${annInSide.id}`);
        assert.match(await status.textContent(), /offline/i, "Ann's page was offline through the gap");
        assert.equal(await message(page, "During the gap").count(), 0);

        // Ann's page reconnects by itself and catches up.
        await ann.context.unroute(realtime);
        await eventually(async () => (await status.textContent()).trim() === "", "the offline status to clear", 20_000);
        const onServer = async () => (await asPerson(ann, "GET",
            `/api/collections/chat_messages/records?perPage=200&sort=created,id&filter=${encodeURIComponent(`room='${roomId}'`)}`))
            .items.map((m) => ({ id: m.id, text: m.text, edited: !!m.edited_at }));
        let shown, expected;
        try {
            await eventually(async () => {
                [shown, expected] = await Promise.all([shownMessages(page), onServer()]);
                return JSON.stringify(shown) === JSON.stringify(expected);
            }, "the page to show the server's messages", 20_000);
        } catch (err) {
            assert.deepEqual(shown, expected, err.message);
        }
        assert.ok(expected.some((m) => m.text === "During the gap: one, edited" && m.edited));
        assert.ok(!expected.some((m) => m.id === before[1].id || m.id === during2.id));
        await eventually(async () => (await reactionCount(ann, "Before the restart: three", "👍")) === "1", "Ben's 👍 from the gap");
        await eventually(async () => (await text(roomItem(page, "Ben Baker").locator(".room-preview"))) === "During the gap: one, edited",
            "the room list's last message");
        await roomItem(page, "Ben's side project").waitFor({ state: "detached" }); // removed meanwhile: gone from her list
        assert.equal(await page.evaluate(() => window.sameDocument), true, "the page was not reloaded");

        // And it is live again.
        await post("After the gap");
        await message(page, "After the gap").waitFor();
    });

    step("had no uncaught errors in any page", () => {
        assert.deepEqual(pageErrors, []);
        assert.deepEqual(clientErrors, []);
    });
});
