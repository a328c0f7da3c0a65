// What every file of the JS SDK suite shares: the server for the topology
// under test, signed-in SDK clients, and small waiting and assertion helpers.
//
// PBCHAT_TOPOLOGY picks the topology (`npm test` runs both):
// - "single": one `pbchat serve`; the SDK does REST and realtime against it;
// - "cluster": a writer and two realtime nodes over a real NATS server
//   (e2e/cmd/pbchatcluster); REST goes to the writer and each client's
//   realtime to a node, alternating, as README "Scale out" explains.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

import { EventSource } from "eventsource";
import PocketBase from "pocketbase";

import { startServer } from "../../lib/server.mjs";

export const topology = process.env.PBCHAT_TOPOLOGY || "single";
export const PASSWORD = "pbchat-demo";

// ---- realtime links the tests can cut ----------------------------------------

// Node has no EventSource: the SDK's realtime needs the polyfill, as its README
// says. This one routes its requests through a fetch the tests control, so a
// test can drop every realtime connection (the SDK reconnects by itself) and
// hold reconnects back while the others write.
const streams = new Set(); // open SSE responses: { cut() }
let blocked = false;

async function realtimeFetch(url, init) {
    if (blocked) throw new TypeError("fetch failed (realtime held back by the test)");
    const res = await fetch(url, init);
    if (!res.body) return res;
    const reader = res.body.getReader();
    let controller;
    const entry = {
        cut() {
            streams.delete(entry);
            try {
                controller.close(); // the SDK sees the stream end, as when a server goes away
            } catch {
                // already closed
            }
            reader.cancel().catch(() => {}); // and the server sees the connection close
        },
    };
    const body = new ReadableStream({
        start(c) {
            controller = c;
        },
        async pull(c) {
            try {
                const { done, value } = await reader.read();
                if (done) {
                    streams.delete(entry);
                    c.close();
                } else c.enqueue(value);
            } catch (err) {
                streams.delete(entry);
                try {
                    c.error(err);
                } catch {
                    // cut meanwhile
                }
            }
        },
        cancel(reason) {
            streams.delete(entry);
            return reader.cancel(reason);
        },
    });
    streams.add(entry);
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

global.EventSource = class extends EventSource {
    constructor(url, init) {
        super(url, { ...init, fetch: realtimeFetch });
    }
};

export const realtimeLinks = {
    /** Drops every open realtime connection and refuses new ones until restore(). */
    cut() {
        blocked = true;
        [...streams].forEach((s) => s.cut());
    },
    restore() {
        blocked = false;
    },
};

// ---- the server and its clients -------------------------------------------------

/**
 * Starts the suite's server (demo data) and returns `login(name)`: an SDK
 * client signed in as name@example.com. In the cluster its realtime (both
 * `pb.realtime` and `pb.collection(…).subscribe`) goes to a node: it is the
 * RealtimeService of `new PocketBase(nodeURL, pb.authStore)`.
 */
export async function startSuite() {
    const server = await startServer({ demo: true, topology });
    const clients = [];
    let next = 0;

    async function login(name) {
        const pb = new PocketBase(server.url);
        pb.autoCancellation(false); // tests fire parallel requests from one client
        if (server.nodes.length) {
            const node = new PocketBase(server.nodes[next++ % server.nodes.length], pb.authStore);
            node.autoCancellation(false);
            pb.realtime = node.realtime;
        }
        await pb.collection("users").authWithPassword(`${name}@example.com`, PASSWORD);
        clients.push(pb);
        return pb;
    }

    async function stop() {
        realtimeLinks.restore();
        // Close the SSE connections before the server goes, or the SDK reconnects forever.
        await Promise.all(clients.map((pb) => pb.realtime.unsubscribe().catch(() => {})));
        await server.stop();
    }

    return { server, login, stop };
}

// ---- helpers --------------------------------------------------------------------------

export const me = (pb) => pb.authStore.record.id;
export const sorted = (list) => [...list].sort();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A 15-character [a-z0-9] id: PocketBase's default id format, chosen by the client. */
export function newId() {
    const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    return Array.from(randomBytes(15), (b) => alphabet[b % alphabet.length]).join("");
}

/** Polls until check() returns a truthy value and returns it. */
export async function waitFor(what, check, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await check();
        if (value) return value;
        if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(20);
    }
}

/** Asserts that promise fails with a ClientResponseError of that status. */
export async function rejectsWith(promise, status, messagePattern) {
    await assert.rejects(promise, (err) => {
        assert.equal(err?.status, status, `status of ${err?.url}: ${JSON.stringify(err?.response)}`);
        if (messagePattern) assert.match(err.response.message, messagePattern);
        return true;
    });
}
