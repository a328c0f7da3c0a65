// Message search in a real browser: Ben searches for part of a word of a
// message older than the room's first page, sees it with the match marked,
// picks it, and lands in the room scrolled to it.
//
//   cd e2e/web && npm ci && npm test        (needs pb_public built: make web)
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchChromium } from "../lib/browser.mjs";
import { startServer, publicDir } from "../../lib/server.mjs";
import { signUp, api as apiAs } from "../lib/people.mjs";


let server, browser;
const pageErrors = [];
const newPerson = (name, email) => signUp(browser, server.url, name, email,
    { onPage: (page) => page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`)) });
const api = (person, ...request) => apiAs(server.url, person, ...request);



describe("message search", () => {
    before(async () => {
        server = await startServer({ publicDir: process.env.PBCHAT_PUBLIC_DIR ?? publicDir });
        browser = await launchChromium();
    }, { timeout: 600_000 });

    after(async () => {
        await browser?.close();
        await server?.stop();
    });

    it("finds a message by a substring and opens it in its room", { timeout: 120_000 }, async () => {
        const ann = await newPerson("Ann", "ann-search@example.com");
        const ben = await newPerson("Ben", "ben-search@example.com");
        const room = await api(ann, "POST", "/api/collections/chat_rooms/records", { type: "group", name: "Trip" });
        await api(ann, "POST", "/api/collections/chat_room_users/records", { room: room.id, user: ben.id });
        const target = await api(ann, "POST", "/api/collections/chat_messages/records", { room: room.id, text: "Meet at the <b>東京タワー</b> gate" });
        for (let i = 0; i < 40; i++) {
            await api(ann, "POST", "/api/collections/chat_messages/records", { room: room.id, text: `filler ${i}` });
        }

        await ben.page.getByRole("button", { name: "Search messages" }).click();
        await ben.page.locator(".search-input").fill("京タ");
        const result = ben.page.locator(".search-result", { hasText: "Meet at the" });
        await result.waitFor();
        assert.equal(await result.locator("mark").textContent(), "京タ");
        // The text is shown as text: the tags in it are not elements.
        assert.match(await result.locator(".search-snippet").textContent(), /<b>東京タワー<\/b>/);
        assert.equal(await result.locator(".search-snippet b").count(), 0);

        await result.click();
        const hit = ben.page.locator(`.timeline .msg[data-id="${target.id}"]`);
        await hit.waitFor({ timeout: 30_000 });
        assert.equal(new URL(ben.page.url()).hash, `#/room/${room.id}`);
        assert.ok(await hit.isVisible(), "the message is in view");
        const box = await hit.boundingBox();
        const timeline = await ben.page.locator(".timeline").boundingBox();
        assert.ok(box.y >= timeline.y - 1 && box.y + box.height <= timeline.y + timeline.height + 1, "scrolled to the message");
        assert.deepEqual(pageErrors, []);
    });
});
