// Push notifications in a real browser: Ben, away from the room (no room
// open), gets a notification from his service worker when Ann writes to him.
//
// Headless Chromium has no push service of its own, so this test is Ben's
// push service: Ben's subscription (stored through the records API, as the
// web client's bell stores one) points at a local HTTP server that decrypts
// what pbchat pushes (RFC 8291) and hands it to Ben's service worker through
// the DevTools protocol (ServiceWorker.deliverPushMessage), as a push service
// would. The worker's showNotification is then read back with getNotifications().
//
//   cd e2e/web && npm ci && npm test        (needs pb_public built: make web)
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import { launchChromium } from "../lib/browser.mjs";
import { startServer, publicDir } from "../../lib/server.mjs";
import { eventually as within, signUp, api as apiAs } from "../lib/people.mjs";


/** The browser's side of RFC 8291 (aes128gcm, one record). */
function decryptPush(body, ecdh, auth) {
    const salt = body.subarray(0, 16);
    const idLen = body[20];
    const asPublic = body.subarray(21, 21 + idLen);
    const ciphertext = body.subarray(21 + idLen);
    const secret = ecdh.computeSecret(asPublic);
    const info = Buffer.concat([Buffer.from("WebPush: info\0"), ecdh.getPublicKey(), asPublic]);
    const ikm = Buffer.from(crypto.hkdfSync("sha256", secret, auth, info, 32));
    const cek = Buffer.from(crypto.hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
    const nonce = Buffer.from(crypto.hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
    const decipher = crypto.createDecipheriv("aes-128-gcm", cek, nonce);
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
    const plain = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
    let end = plain.length;
    while (end > 0 && plain[end - 1] === 0) end--; // padding
    assert.equal(plain[end - 1], 2, "the last record's delimiter");
    return plain.subarray(0, end - 1).toString("utf8");
}


let server, browser, pushService;
// A push waits for the coalescing window (10 s) first.
const eventually = (fn, what, timeout = 30_000) => within(fn, what, timeout);
const newPerson = (name, email) => signUp(browser, server.url, name, email);
const api = (person, ...request) => apiAs(server.url, person, ...request);



describe("push notifications", () => {
    before(async () => {
        server = await startServer({ publicDir });
        browser = await launchChromium();
    }, { timeout: 600_000 });

    after(async () => {
        await browser?.close();
        pushService?.close();
        await server?.stop();
    });

    it("reaches a member who is away, through the service worker", { timeout: 120_000 }, async () => {
        const ann = await newPerson("Ann", "ann-push@example.com");
        const ben = await newPerson("Ben", "ben-push@example.com");
        await ben.context.grantPermissions(["notifications"], { origin: server.url });

        // Ben's service worker, as the bell registers it.
        const cdp = await ben.context.newCDPSession(ben.page);
        const registrations = new Map();
        cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations: list }) => {
            for (const r of list) if (!r.isDeleted) registrations.set(r.scopeURL, r.registrationId);
        });
        await cdp.send("ServiceWorker.enable");
        await ben.page.evaluate(async () => {
            await navigator.serviceWorker.register("/sw.js", { scope: "/" });
            await navigator.serviceWorker.ready;
        });
        const registrationId = await eventually(() => registrations.get(server.url + "/"), "Ben's service worker registration");

        // Ben's push service: decrypt, then push to his worker.
        const ecdh = crypto.createECDH("prime256v1");
        ecdh.generateKeys();
        const auth = crypto.randomBytes(16);
        const pushed = [];
        pushService = http.createServer((req, res) => {
            const chunks = [];
            req.on("data", (c) => chunks.push(c));
            req.on("end", async () => {
                try {
                    const data = decryptPush(Buffer.concat(chunks), ecdh, auth);
                    pushed.push(JSON.parse(data));
                    await cdp.send("ServiceWorker.deliverPushMessage", { origin: server.url, registrationId, data });
                    res.writeHead(201).end();
                } catch (err) {
                    pushed.push({ error: err.message });
                    res.writeHead(400).end();
                }
            });
        });
        await new Promise((r) => pushService.listen(0, "127.0.0.1", r));
        const endpoint = `http://127.0.0.1:${pushService.address().port}/push/ben`;
        await api(ben, "POST", "/api/collections/chat_push_subscriptions/records", {
            user: ben.id, endpoint, p256dh: ecdh.getPublicKey().toString("base64url"), auth: auth.toString("base64url"),
        });

        // Ann writes to a group with Ben, who has no room open.
        const room = await api(ann, "POST", "/api/collections/chat_rooms/records", { type: "group", name: "Lunch" });
        await api(ann, "POST", "/api/collections/chat_room_users/records", { room: room.id, user: ben.id });
        await api(ann, "POST", "/api/collections/chat_messages/records", { room: room.id, text: "Pizza at noon?" });

        // The coalescing window (10 s by default) holds it back a little.
        const shown = await eventually(() => ben.page.evaluate(async () => {
            const registration = await navigator.serviceWorker.ready;
            const list = await registration.getNotifications();
            return list.length ? list.map((n) => ({ title: n.title, body: n.body, room: n.data?.room })) : null;
        }), "Ben's notification", 60_000);
        assert.equal(pushed.length, 1, JSON.stringify(pushed));
        assert.equal(pushed[0].user, ben.id);
        assert.deepEqual(shown, [{ title: "Ann in Lunch", body: "Pizza at noon?", room: room.id }]);
    });
});
