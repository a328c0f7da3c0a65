// Conversations in a real browser, Ann and Ben in two contexts: replies,
// threads, @-mentions, pins, "seen by", system notices, moderation controls
// shown only to those allowed, a PDF attachment; the "new messages" divider,
// the keyboard (composer focused on open, one Tab stop for the list, arrow
// keys, Escape), words for a refused message; and axe-core on the main
// screens in the light and the dark theme (0 serious or critical).
//
// A case whose server feature is not there (a field the records API does not
// return, a route that answers 404) is skipped, and says so.
//
//   cd e2e/web && npm ci && npm test        (needs pb_public built: make web)
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchChromium } from "../lib/browser.mjs";
import path from "node:path";
import { startServer, publicDir, repoRoot } from "../../lib/server.mjs";
import { eventually, signUp, call as callAs, api as apiAs } from "../lib/people.mjs";
import { axeClean } from "../lib/axe.mjs";


let server, browser, ann, ben, room;
const pageErrors = [];
let probe = {}; // what the server supports: fields of a message, routes, collections


const newPerson = (name, email) => signUp(browser, server.url, name, email, {
    onPage: (page) => {
        page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
        page.on("console", (m) => { if (process.env.DEBUG_CONSOLE) console.log(`[${name} ${m.type()}] ${m.text()}`); });
        page.on("dialog", (d) => d.accept()); // confirm()
    },
});



const call = (person, ...request) => callAs(server.url, person, ...request);
const api = (person, ...request) => apiAs(server.url, person, ...request);
const post = (person, fields) => api(person, "POST", "/api/collections/chat_messages/records", { room: room.id, ...fields });
const msg = (page, words) => page.locator(".timeline > .msg", { hasText: words });

async function openRoom(person) {
    await person.page.goto(`${server.url}/#/room/${room.id}`);
    await person.page.locator(".timeline").waitFor();
}

/** A one-page PDF. */
function pdf() {
    return Buffer.from("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
        "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n");
}

describe("conversations in the web client", () => {
    before(async () => {
        server = await startServer({ publicDir: process.env.PBCHAT_PUBLIC_DIR ?? publicDir });
        browser = await launchChromium();
    }, { timeout: 600_000 });

    after(async () => {
        await browser?.close();
        await server?.stop();
    });

    it("sign-in has no serious accessibility violations", { timeout: 60_000 }, async () => {
        const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
        const page = await context.newPage();
        await page.goto(server.url);
        await page.getByRole("button", { name: "Create an account" }).waitFor();
        await axeClean(page, "sign-in");
        await context.close();
    });

    it("signs up Ann and Ben; Ann's group with Ben; what the server supports", { timeout: 60_000 }, async () => {
        ann = await newPerson("Ann", "ann-conv@example.com");
        ben = await newPerson("Ben", "ben-conv@example.com");
        room = await api(ann, "POST", "/api/collections/chat_rooms/records", { type: "group", name: "Crew" });
        await api(ann, "POST", "/api/collections/chat_room_users/records", { room: room.id, user: ben.id });
        const first = await post(ann, { text: "Hello crew" });
        probe = {
            reply: "reply_to" in first,
            thread: "thread_count" in first,
            mentions: "mentions" in first,
            pin: "pinned_at" in first,
            system: "system" in first,
            receipts: (await call(ann, "GET", `/api/chat/rooms/${room.id}/receipts`)).status === 200,
            bans: (await call(ann, "GET", "/api/collections/chat_room_bans/records")).status === 200,
            reports: (await call(ann, "GET", "/api/collections/chat_message_reports/records")).status === 200,
        };
        const form = new FormData();
        form.append("file", new Blob([pdf()], { type: "application/pdf" }), "probe.pdf");
        probe.pdf = (await call(ann, "POST", "/api/collections/chat_media/records", form)).status === 200;
        console.log("server supports:", JSON.stringify(probe));
    });

    it("the room list and an open room: no serious violations; the composer has focus", { timeout: 60_000 }, async () => {
        await ben.page.goto(server.url);
        await ben.page.locator(".room-item").first().waitFor();
        await axeClean(ben.page, "room list");
        await openRoom(ben);
        await msg(ben.page, "Hello crew").waitFor();
        await eventually(() => ben.page.evaluate(() => document.activeElement?.classList.contains("composer-input")), "the composer focused on open");
        // The placeholder stays on one line.
        const input = ben.page.locator(".composer-input");
        assert.equal(await input.evaluate((el) => getComputedStyle(el, "::placeholder").whiteSpace), "nowrap");
        await axeClean(ben.page, "open room");
    });

    it("a 'New messages' divider before the first unread; arrow keys move inside one Tab stop", { timeout: 60_000 }, async () => {
        await ben.page.goto(`${server.url}/#/`);
        await ben.page.locator(".room-item").first().waitFor();
        await new Promise((r) => setTimeout(r, 700)); // Ben's read of "Hello crew" lands first
        for (const t of ["one", "two", "three"]) await post(ann, { text: `Unread ${t}` });
        await openRoom(ben);
        await msg(ben.page, "Unread three").waitFor();
        const before = await ben.page.locator(".unread-divider + .msg .msg-text").textContent();
        assert.equal(before, "Unread one");

        // One Tab stop: exactly one message has tabindex 0; arrows move it.
        assert.equal(await ben.page.locator('.timeline > [tabindex="0"]').count(), 1);
        await ben.page.locator(".timeline > .msg", { hasText: "Unread three" }).focus();
        await ben.page.keyboard.press("ArrowUp");
        assert.equal(await ben.page.evaluate(() => document.activeElement.querySelector(".msg-text")?.textContent), "Unread two");
        await ben.page.keyboard.press("Home");
        assert.equal(await ben.page.evaluate(() => document.activeElement.dataset.id),
            await ben.page.locator(".timeline > .msg, .timeline > .notice").first().getAttribute("data-id"));
        assert.equal(await ben.page.locator('.timeline > [tabindex="0"]').count(), 1);

        // The reaction picker: arrows, Enter, and Escape returns focus to its button.
        const three = msg(ben.page, "Unread three");
        await three.hover();
        await three.getByRole("button", { name: "Add reaction" }).click();
        await ben.page.keyboard.press("ArrowRight");
        assert.equal(await ben.page.evaluate(() => document.activeElement.textContent), "❤️");
        await ben.page.keyboard.press("Escape");
        assert.equal(await ben.page.locator(".picker").count(), 0);
        assert.equal(await ben.page.evaluate(() => document.activeElement.getAttribute("aria-label")), "Add reaction");
        await three.getByRole("button", { name: "Add reaction" }).click();
        await ben.page.keyboard.press("ArrowRight");
        await ben.page.keyboard.press("Enter");
        await msg(ann.page, "Unread three").locator(".reaction", { hasText: "❤️" }).waitFor().catch(async () => {
            await openRoom(ann);
            await msg(ann.page, "Unread three").locator(".reaction", { hasText: "❤️" }).waitFor();
        });

        // Escape closes a dialog and gives focus back to its opener.
        await ben.page.getByRole("button", { name: "Room details" }).last().click();
        await ben.page.locator("dialog.modal").waitFor();
        await ben.page.keyboard.press("Escape");
        assert.equal(await ben.page.locator("dialog.modal").count(), 0);
        assert.equal(await ben.page.evaluate(() => document.activeElement.getAttribute("aria-label")), "Room details");
    });

    it("a message too long says how long it may be and keeps the text", { timeout: 60_000 }, async () => {
        const long = "x".repeat(4001);
        const input = ben.page.locator(".composer-input");
        await input.fill(long);
        await input.press("Enter");
        const error = ben.page.locator(".composer-error");
        await error.waitFor();
        assert.match(await error.textContent(), /at most 4000 characters/);
        assert.equal(await input.inputValue(), long);
        // Shown above the composer, not over it.
        const e = await error.boundingBox();
        const i = await input.boundingBox();
        assert.ok(e.y + e.height <= i.y + 1, "the error does not cover the composer");
        await input.fill("");
    });

    it("reply: quoted for both; 'deleted message' once the parent is gone", { timeout: 60_000 }, async (t) => {
        if (!probe.reply) return t.skip("the server has no reply_to yet");
        await openRoom(ann);
        const parent = await post(ann, { text: "Where do we meet?" });
        const m = msg(ben.page, "Where do we meet?");
        await m.waitFor();
        await m.hover();
        await m.getByRole("button", { name: "Reply", exact: true }).click();
        await ben.page.locator(".replying", { hasText: "Where do we meet?" }).waitFor();
        await ben.page.locator(".composer-input").fill("At the station");
        await ben.page.locator(".composer-input").press("Enter");
        const reply = msg(ann.page, "At the station");
        await reply.locator(".quote", { hasText: "Where do we meet?" }).waitFor();
        await api(ann, "DELETE", `/api/collections/chat_messages/records/${parent.id}`);
        await openRoom(ann);
        await msg(ann.page, "At the station").locator(".quote.deleted", { hasText: "deleted message" }).waitFor();
    });

    it("thread: a side panel with the root and its replies; the count on the root; Escape closes it", { timeout: 60_000 }, async (t) => {
        if (!probe.thread) return t.skip("the server has no threads yet");
        await openRoom(ann);
        await openRoom(ben);
        await post(ann, { text: "Plan for Saturday" });
        const root = msg(ben.page, "Plan for Saturday");
        await root.waitFor();
        await root.hover();
        const opener = root.getByRole("button", { name: "Reply in thread" });
        await opener.click();
        const panel = ben.page.locator(".thread-panel");
        await panel.locator(".msg", { hasText: "Plan for Saturday" }).waitFor();
        await axeClean(ben.page, "thread panel");
        await panel.locator(".thread-input").fill("I bring the tent");
        await panel.locator(".thread-input").press("Enter");
        await panel.locator(".msg", { hasText: "I bring the tent" }).waitFor();
        // Not in the main timeline; the root shows the count, for Ann too.
        assert.equal(await msg(ben.page, "I bring the tent").count(), 0);
        await msg(ann.page, "Plan for Saturday").locator(".thread-summary", { hasText: "1 reply" }).waitFor();
        await ann.page.locator(".thread-summary").click();
        await ann.page.locator(".thread-panel .msg", { hasText: "I bring the tent" }).waitFor();
        if (process.env.PBCHAT_SCREENSHOTS) {
            // make screenshots: the open thread, with a reply quoting a deleted message above it.
            await ann.page.mouse.move(0, 0);
            await ann.page.screenshot({ path: path.join(repoRoot, "docs", "screenshots", "thread.png") });
        }
        await ben.page.keyboard.press("Escape");
        assert.equal(await panel.count(), 0);
        await ann.page.keyboard.press("Escape");
    });

    it("mention: @-autocomplete among the members sets mentions", { timeout: 60_000 }, async (t) => {
        if (!probe.mentions) return t.skip("the server has no mentions yet");
        const input = ann.page.locator(".composer-input");
        await input.fill("");
        await input.pressSequentially("Thanks @Be");
        const option = ann.page.getByRole("option", { name: "Ben" });
        await option.waitFor();
        await input.press("Enter");
        assert.equal(await input.inputValue(), "Thanks @Ben ");
        await input.pressSequentially("for the tent");
        await input.press("Enter");
        const mine = msg(ann.page, "for the tent");
        await mine.locator(".mention", { hasText: "@Ben" }).waitFor();
        const list = await api(ann, "GET", `/api/collections/chat_messages/records?filter=${encodeURIComponent(`room='${room.id}' && text~'for the tent'`)}`);
        assert.deepEqual(list.items[0].mentions, [ben.id]);
        await msg(ben.page, "for the tent").and(ben.page.locator(".mentioned")).waitFor();
    });

    it("pin: a member holding can_pin_messages pins; the pinned list; Ben has no pin control", { timeout: 60_000 }, async (t) => {
        if (!probe.pin) return t.skip("the server has no pins yet");
        await post(ann, { text: "Meeting point: gate 3" });
        const m = msg(ann.page, "Meeting point: gate 3");
        await m.waitFor();
        await m.hover();
        await m.getByRole("button", { name: "Pin message" }).click();
        await m.locator(".pinned-tag").waitFor();
        await msg(ben.page, "Meeting point: gate 3").locator(".pinned-tag").waitFor();
        await msg(ben.page, "Meeting point: gate 3").hover();
        assert.equal(await msg(ben.page, "Meeting point: gate 3").getByRole("button", { name: /pin message/i }).count(), 0);
        await ben.page.getByRole("button", { name: "Pinned messages" }).click();
        await ben.page.locator(".pinned-item", { hasText: "Meeting point: gate 3" }).waitFor();
        await ben.page.keyboard.press("Escape");
    });

    it("seen by: Ann's last message shows Ben once he has read it", { timeout: 60_000 }, async () => {
        await openRoom(ann);
        await ben.page.goto(`${server.url}/#/`);
        await post(ann, { text: "Did you see this?" });
        await msg(ann.page, "Did you see this?").waitFor();
        assert.equal(await ann.page.locator(".seen-by").count(), 0);
        await openRoom(ben);
        await msg(ben.page, "Did you see this?").waitFor();
        await ann.page.locator(".seen-by", { hasText: "Seen by Ben" }).waitFor();
    });

    it("system notice: Ann renames the room; both see it in the timeline", { timeout: 60_000 }, async (t) => {
        if (!probe.system) return t.skip("the server writes no system messages yet");
        await api(ann, "PATCH", `/api/collections/chat_rooms/records/${room.id}`, { name: "Crew 2" });
        await ben.page.locator(".timeline > .notice", { hasText: "renamed the room to “Crew 2”" }).waitFor();
        await ann.page.locator(".timeline > .notice", { hasText: "You renamed the room to “Crew 2”" }).waitFor();
    });

    it("moderation controls only for those allowed", { timeout: 60_000 }, async (t) => {
        // Ann created the group: she may remove, so she may silence and ban; Ben may not.
        await ann.page.getByRole("button", { name: "Room details" }).last().click();
        const annDialog = ann.page.locator("dialog.modal");
        await annDialog.locator(".member", { hasText: "Ben" }).waitFor();
        assert.equal(await annDialog.locator(".member", { hasText: "Ben" }).getByRole("button", { name: "Ban" }).count(), 1);
        assert.equal(await annDialog.locator(".member", { hasText: "Ben" }).getByRole("button", { name: /Silence/ }).count(), 1);
        assert.equal(await annDialog.getByLabel("Slow mode").count(), 1);
        await ann.page.keyboard.press("Escape");
        await ben.page.getByRole("button", { name: "Room details" }).last().click();
        const benDialog = ben.page.locator("dialog.modal");
        await benDialog.locator(".member", { hasText: "Ann" }).waitFor();
        assert.equal(await benDialog.getByRole("button", { name: "Ban" }).count(), 0);
        assert.equal(await benDialog.getByRole("button", { name: /Silence/ }).count(), 0);
        assert.equal(await benDialog.getByLabel("Slow mode").count(), 0);
        await ben.page.keyboard.press("Escape");
        // Any member may report a message of someone else's (not their own).
        if (!probe.reports) return t.skip("the server has no reports yet (controls checked)");
        const m = msg(ben.page, "Did you see this?");
        await m.hover();
        await m.getByRole("button", { name: "Report message" }).click();
        const report = ben.page.getByRole("dialog", { name: "Report message" });
        await report.getByLabel("Reason").fill("spam");
        await report.getByRole("button", { name: "Report", exact: true }).click();
        await ben.page.locator(".toast", { hasText: "Reported" }).waitFor();
        assert.equal(await report.count(), 0);
        await msg(ann.page, "Did you see this?").hover();
        assert.equal(await msg(ann.page, "Did you see this?").getByRole("button", { name: "Report message" }).count(), 0);
    });

    it("scrolled up: a 'new messages below' marker that scrolls down", { timeout: 60_000 }, async () => {
        for (let i = 0; i < 25; i++) await post(ann, { text: `Filler ${i}` });
        await msg(ben.page, "Filler 24").waitFor();
        await ben.page.locator(".timeline").evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event("scroll")); });
        await new Promise((r) => setTimeout(r, 300));
        await ben.page.locator(".timeline").evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event("scroll")); });
        await post(ann, { text: "Below the fold" });
        const marker = ben.page.getByRole("button", { name: /New messages below/ });
        await marker.waitFor();
        await marker.click();
        await eventually(() => msg(ben.page, "Below the fold").isVisible(), "the new message in view");
        assert.ok(await marker.isHidden());
    });

    it("silence: Ann silences Ben for an hour; his composer says until when; a post is refused in words", { timeout: 60_000 }, async (t) => {
        const membership = (await api(ann, "GET", `/api/collections/chat_room_users/records?filter=${encodeURIComponent(`room='${room.id}' && user='${ben.id}'`)}`)).items[0];
        if (!("silenced_until" in membership)) return t.skip("the server has no silence yet");
        await ann.page.getByRole("button", { name: "Room details" }).last().click();
        await ann.page.locator("dialog.modal .member", { hasText: "Ben" }).getByRole("button", { name: "Silence 1 h" }).click();
        await ann.page.locator("dialog.modal .member", { hasText: "Ben" }).getByRole("button", { name: "Unsilence" }).waitFor();
        await ben.page.locator(".no-composer", { hasText: "silenced" }).waitFor();
        const refused = await call(ben, "POST", "/api/collections/chat_messages/records", { room: room.id, text: "let me talk" });
        assert.equal(refused.status, 403);
        assert.match(JSON.stringify(refused.body), /silenced/);
        await ann.page.locator("dialog.modal .member", { hasText: "Ben" }).getByRole("button", { name: "Unsilence" }).click();
        await ben.page.locator(".composer-input").waitFor();
        await ann.page.keyboard.press("Escape");
    });

    it("slow mode: Ann turns it on in the details; Ben's second post is refused in words, his text kept", { timeout: 60_000 }, async (t) => {
        const current = await api(ann, "GET", `/api/collections/chat_rooms/records/${room.id}`);
        if (!("slow_mode_seconds" in current)) return t.skip("the server has no slow mode yet");
        await ann.page.getByRole("button", { name: "Room details" }).last().click();
        await ann.page.locator("dialog.modal").getByLabel("Slow mode").selectOption("30");
        await ann.page.locator(".toast", { hasText: "Slow mode is on" }).waitFor();
        await ann.page.keyboard.press("Escape");
        await eventually(async () => (await api(ann, "GET", `/api/collections/chat_rooms/records/${room.id}`)).slow_mode_seconds === 30, "slow mode on");
        // Ben posted in the last 30 seconds already, or this first post counts: the next one is too soon.
        const input = ben.page.locator(".composer-input");
        const error = ben.page.locator(".composer-error");
        await input.fill("First in slow mode");
        await input.press("Enter");
        await eventually(async () => (await msg(ben.page, "First in slow mode").count()) || (await error.isVisible()), "sent or refused");
        if (!(await error.isVisible())) {
            await input.fill("Second too soon");
            await input.press("Enter");
            await error.waitFor();
        }
        const kept = await input.inputValue();
        assert.match(await error.textContent(), /Slow mode is on: each member may post once every 30 seconds/);
        assert.ok(["First in slow mode", "Second too soon"].includes(kept), `the text is kept (${kept})`);
        await input.fill("");
        await api(ann, "PATCH", `/api/collections/chat_rooms/records/${room.id}`, { slow_mode_seconds: 0 });
    });

    it("a PDF attachment: a chip with its name and a download link for Ben", { timeout: 60_000 }, async (t) => {
        if (!probe.pdf) return t.skip("the server takes no PDF in chat_media yet");
        await ann.page.locator('.composer input[type="file"]').setInputFiles({ name: "plan.pdf", mimeType: "application/pdf", buffer: pdf() });
        await ann.page.locator(".preview.file", { hasText: "plan.pdf" }).waitFor();
        await ann.page.locator(".composer-input").fill("The plan");
        await ann.page.locator(".composer-input").press("Enter");
        const chip = msg(ben.page, "The plan").locator(".file-chip");
        await chip.waitFor();
        assert.match(await chip.locator(".file-name").textContent(), /^plan\.pdf$/);
        const href = await chip.locator(".file-download").getAttribute("href");
        assert.match(href, /download=1/);
        assert.match(href, /token=/);
        const res = await ben.page.request.get(href);
        assert.equal(res.status(), 200);
        assert.match(res.headers()["content-disposition"] ?? "", /attachment/);
    });

    it("editing a message to empty offers to delete it", { timeout: 60_000 }, async () => {
        const gone = await post(ann, { text: "A typo here" });
        const m = msg(ann.page, "A typo here");
        await m.waitFor();
        await m.hover();
        await m.getByRole("button", { name: "Edit message" }).click();
        const asked = new Promise((resolve) => ann.page.once("dialog", (d) => resolve(d.message())));
        await ann.page.locator(".edit-input").fill("");
        await ann.page.locator(".edit-input").press("Enter");
        assert.match(await asked, /cannot be empty.*Delete/);
        await msg(ben.page, "A typo here").waitFor({ state: "detached" });
        assert.equal((await call(ann, "GET", `/api/collections/chat_messages/records/${gone.id}`)).status, 404);
    });

    it("had no uncaught errors in any page", () => {
        assert.deepEqual(pageErrors, []);
    });
});
