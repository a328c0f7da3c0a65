// Threads and moderation screens in a real browser: Ann created the group
// "Hall" (she holds every permission), Ben and Cal are plain members.
// The Threads view lists Ann's threads with their unread replies and opens
// one; Ben reports a message through the report dialog and Ann reviews it
// (dismiss, delete the message); Ann bans Cal through the ban dialog, finds
// him in the ban list and unbans him; Ben sees none of these screens. Each
// new screen passes axe (0 serious or critical) in both themes, and every
// refusal is shown in words inside its dialog.
//
//   cd e2e/web && npm ci && npm test        (needs pb_public built: make web)
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchChromium } from "../lib/browser.mjs";
import { startServer, publicDir } from "../../lib/server.mjs";
import { signUp, api as apiAs } from "../lib/people.mjs";
import { axeClean } from "../lib/axe.mjs";


let server, browser, ann, ben, cal, room;
const pageErrors = [];

const newPerson = (name, email) => signUp(browser, server.url, name, email, {
    onPage: (page) => {
        page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
        page.on("console", (m) => { if (process.env.DEBUG_CONSOLE) console.log(`[${name} ${m.type()}] ${m.text()}`); });
    },
});

const api = (person, ...request) => apiAs(server.url, person, ...request);
const post = (person, fields) => api(person, "POST", "/api/collections/chat_messages/records", { room: room.id, ...fields });
const msg = (page, words) => page.locator(".timeline > .msg", { hasText: words });
const records = (person, collection) =>
    api(person, "GET", `/api/collections/${collection}/records?filter=${encodeURIComponent(`room='${room.id}'`)}`).then((r) => r.items);

async function openRoom(person) {
    await person.page.goto(`${server.url}/#/room/${room.id}`);
    await person.page.locator(".timeline").waitFor();
}

async function openDetails(person) {
    await person.page.getByRole("button", { name: "Room details" }).last().click();
    const details = person.page.getByRole("dialog", { name: "Details" });
    await details.locator(".member").first().waitFor();
    return details;
}

/** A datetime-local value, days from now in the browser's time zone. */
const localDate = (page, days) => page.evaluate((d) => {
    const t = new Date(Date.now() + d * 86400_000);
    return new Date(t - t.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}, days);

describe("threads view and moderation screens in the web client", () => {
    before(async () => {
        server = await startServer({ publicDir: process.env.PBCHAT_PUBLIC_DIR ?? publicDir });
        browser = await launchChromium();
        ann = await newPerson("Ann", "ann-mod@example.com");
        ben = await newPerson("Ben", "ben-mod@example.com");
        cal = await newPerson("Cal", "cal-mod@example.com");
        room = await api(ann, "POST", "/api/collections/chat_rooms/records", { type: "group", name: "Hall" });
        for (const p of [ben, cal]) await api(ann, "POST", "/api/collections/chat_room_users/records", { room: room.id, user: p.id });
    }, { timeout: 600_000 });

    after(async () => {
        await browser?.close();
        await server?.stop();
    });

    it("Threads: Ann's thread with its unread reply; opening it clears the count", { timeout: 60_000 }, async () => {
        const root = await post(ann, { text: "Trip plan" });
        await post(ben, { text: "I book the train", thread: root.id });
        const other = await post(ben, { text: "Ben's own topic" }); // Ann takes no part in it
        await post(cal, { text: "Count me in", thread: other.id });

        await openRoom(ann);
        const button = ann.page.getByRole("button", { name: "Threads, 1 unread reply" });
        await button.waitFor();
        await button.click();
        const view = ann.page.getByRole("dialog", { name: "Threads" });
        const item = view.locator(".thread-item", { hasText: "Trip plan" });
        await item.waitFor();
        assert.equal(await view.locator(".thread-item").count(), 1, "only the threads Ann takes part in");
        assert.match(await item.textContent(), /1 reply/);
        assert.equal(await item.locator(".thread-unread").textContent(), "1 unread");
        await axeClean(ann.page, "threads view");
        await item.click();
        await ann.page.locator(".thread-panel .msg", { hasText: "I book the train" }).waitFor();
        await ann.page.getByRole("button", { name: "Threads", exact: true }).waitFor(); // read: no count
        await ann.page.keyboard.press("Escape");
        await ann.page.locator(".thread-panel").waitFor({ state: "detached" });
    });

    it("Ben reports Cal's message in a dialog; a blank reason is refused in words", { timeout: 60_000 }, async () => {
        await post(cal, { text: "Cheap watches here" });
        await openRoom(ben);
        const m = msg(ben.page, "Cheap watches here");
        await m.hover();
        await m.getByRole("button", { name: "Report message" }).click();
        const dialog = ben.page.getByRole("dialog", { name: "Report message" });
        const send = dialog.getByRole("button", { name: "Report", exact: true });
        await dialog.getByLabel("Reason").fill("   ");
        await send.click();
        await dialog.getByRole("alert").filter({ hasText: /^Reason: a report needs a reason\.$/i }).waitFor();
        await axeClean(ben.page, "report dialog");
        await dialog.getByLabel("Reason").fill("Spam");
        await send.click();
        await ben.page.locator(".toast", { hasText: "Reported" }).waitFor();
        assert.equal(await dialog.count(), 0);
    });

    it("Ann reviews the reports: dismisses one, deletes the message of another", { timeout: 60_000 }, async () => {
        const phishing = await post(cal, { text: "Click this link" });
        await api(ben, "POST", "/api/collections/chat_message_reports/records", { message: phishing.id, reason: "Phishing" });
        await msg(ben.page, "Click this link").waitFor();

        const details = await openDetails(ann);
        await details.getByRole("button", { name: "Reports" }).click();
        const reports = ann.page.getByRole("dialog", { name: "Reports" });
        const spam = reports.locator(".mod-item", { hasText: "Cheap watches here" });
        await spam.waitFor();
        assert.match(await spam.textContent(), /Ben reported.*Cal.*Cheap watches here.*Reason\s*Spam/s);
        await axeClean(ann.page, "reports review");

        await spam.getByRole("button", { name: "Dismiss" }).click();
        await spam.waitFor({ state: "detached" });
        await reports.locator(".mod-item", { hasText: "Click this link" }).getByRole("button", { name: "Delete message" }).click();
        await reports.getByText("No reports").waitFor();
        await msg(ben.page, "Click this link").waitFor({ state: "detached" });
        assert.equal(await msg(ben.page, "Cheap watches here").count(), 1, "a dismissed report leaves its message");
        assert.deepEqual(await records(ann, "chat_message_reports"), []);
        await ann.page.keyboard.press("Escape");
        await ann.page.keyboard.press("Escape");
    });

    it("Ann bans Cal in a dialog (an end in the past refused in words), finds him in the ban list, unbans him", { timeout: 60_000 }, async () => {
        const details = await openDetails(ann);
        await details.locator(".member", { hasText: "Cal" }).getByRole("button", { name: "Ban" }).click();
        const dialog = ann.page.getByRole("dialog", { name: "Ban Cal" });
        await dialog.getByLabel("Reason").fill("Spam");
        await dialog.getByLabel("Until").fill(await localDate(ann.page, -1));
        await dialog.getByRole("button", { name: "Ban", exact: true }).click();
        await dialog.getByRole("alert").filter({ hasText: /^Until must be in the future/ }).waitFor();
        await axeClean(ann.page, "ban dialog");
        await dialog.getByLabel("Until").fill(await localDate(ann.page, 2));
        await dialog.getByRole("button", { name: "Ban", exact: true }).click();
        await dialog.waitFor({ state: "detached" });
        await details.locator(".member", { hasText: "Cal" }).waitFor({ state: "detached" });
        const [ban] = await records(ann, "chat_room_bans");
        assert.equal(ban.user, cal.id);
        assert.ok(new Date(ban.until.replace(" ", "T")) > new Date(Date.now() + 86400_000), `until ${ban.until}`);
        assert.deepEqual(await records(ben, "chat_room_bans"), [], "Ben may not list bans");

        await details.getByRole("button", { name: "Banned people" }).click();
        const list = ann.page.getByRole("dialog", { name: "Banned people" });
        const item = list.locator(".mod-item", { hasText: "Cal" });
        await item.waitFor();
        assert.match(await item.textContent(), /Reason\s*Spam/);
        assert.doesNotMatch(await item.textContent(), /No end/);
        await axeClean(ann.page, "ban list");
        await item.getByRole("button", { name: "Unban Cal" }).click();
        await list.getByText("Nobody is banned").waitFor();
        assert.deepEqual(await records(ann, "chat_room_bans"), []);
        await ann.page.keyboard.press("Escape");
        await ann.page.keyboard.press("Escape");
    });

    it("Ben, without can_remove_users or can_delete_messages, sees no moderation screen", { timeout: 60_000 }, async () => {
        const details = await openDetails(ben);
        await details.locator(".member", { hasText: "Ann" }).waitFor();
        for (const name of ["Reports", "Banned people", "Ban"]) {
            assert.equal(await details.getByRole("button", { name, exact: true }).count(), 0, name);
        }
        assert.equal(await details.getByRole("heading", { name: "Moderation" }).count(), 0);
        await ben.page.keyboard.press("Escape");
    });

    it("had no uncaught errors in any page", () => {
        assert.deepEqual(pageErrors, []);
    });
});
