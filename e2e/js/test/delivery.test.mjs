// Nothing is missed (SPEC "Version 2 → Delivery"), through the official JS SDK
// in the topology PBCHAT_TOPOLOGY names: stock subscriptions follow rooms the
// user joins or creates after subscribing, every event carries the event
// log's cursor, and GET /api/chat/sync returns exactly what a client missed
// while it was away.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";

import { me, newId, realtimeLinks, startSuite, topology, waitFor } from "../lib/harness.mjs";

const COLLECTIONS = ["chat_rooms", "chat_room_users", "chat_messages", "chat_message_reactions"];

/** GET /api/chat/sync: { cursor, more, reset, events: [{ cursor, type, room, collection, action, record }] }. */
const sync = (pb, query = {}) => pb.send("/api/chat/sync", { query });

/** A system message (a notice of a join, a removal, a rename): these tests follow members' changes. */
const isNotice = (e) => e.record?.collectionName === "chat_messages" && !!e.record?.system;

/** Every event after `since`, following `more`, in pages of `limit` (notices left out). */
async function syncAll(pb, since, limit) {
    const events = [];
    let cursor = since;
    for (let page = 0; ; page++) {
        assert.ok(page < 100, "sync kept answering more: true");
        const res = await sync(pb, { since: cursor, ...(limit ? { limit } : {}) });
        assert.equal(res.reset, false, `sync from ${cursor} answered reset`);
        assert.equal(typeof res.cursor, "string");
        assert.ok(res.cursor, "sync answers a cursor");
        events.push(...res.events.filter((e) => !isNotice(e)));
        cursor = res.cursor;
        if (!res.more) return { events, cursor };
    }
}

// Sync may fold a record's run of changes into one event at its last change,
// in its latest state (a message created then edited comes as created, one
// created then deleted as its deletion only), so the tests compare what the
// events say about each record rather than one event per change.

/** Each record's last event, in the order of those events: Map id → event. */
function lastPerRecord(events) {
    const last = new Map();
    for (const e of events) {
        last.delete(e.record.id);
        last.set(e.record.id, e);
    }
    return last;
}

/** What the events leave of each record: "deleted", or the fields a test looks at. */
const outcome = (events) => Object.fromEntries([...lastPerRecord(events)].map(([id, e]) => [id, e.action === "delete"
    ? "deleted"
    : Object.fromEntries(["text", "name", "reaction", "user", "permissions"].filter((k) => k in e.record).map((k) => [k, e.record[k]]))]));

const ACTIONS = { created: "create", updated: "update", deleted: "delete", joined: "create", left: "delete" };
/** Every sync event names its collection and an action that agrees with its type. */
function assertWellFormed(e) {
    assert.ok(typeof e.cursor === "string" && e.cursor, `a cursor on ${JSON.stringify(e)}`);
    assert.ok(COLLECTIONS.includes(e.collection), `collection of ${JSON.stringify(e)}`);
    assert.equal(e.action, ACTIONS[e.type.split(".")[1]], `action of ${JSON.stringify(e)}`);
    assert.equal(e.record.collectionName, e.collection, `record of ${JSON.stringify(e)}`);
    if (e.action === "delete") assert.equal(e.record.room, e.room, `tombstone of ${JSON.stringify(e)}`);
}

describe(`delivery: nothing is missed (${topology})`, () => {
    let suite, alice, bob, carol;

    before(async () => {
        suite = await startSuite();
        [alice, bob, carol] = await Promise.all(["alice", "bob", "carol"].map(suite.login)); // in the cluster: nodes 1, 2, 1
    });

    after(async () => {
        await suite?.stop();
    });

    // Each test subscribes afresh: the SSE connection closes when its last subscription goes.
    afterEach(async () => {
        realtimeLinks.restore();
        await Promise.all([alice, bob, carol].map((pb) => {
            pb.realtime.onDisconnect = undefined;
            return pb.realtime.unsubscribe();
        }));
    });

    const newGroup = async (owner, name, members = [], extra = {}) => {
        const room = await owner.collection("chat_rooms").create({ type: "group", name, ...extra });
        for (const pb of members) await owner.collection("chat_room_users").create({ room: room.id, user: me(pb) });
        return room;
    };
    const post = (pb, room, text) => pb.collection("chat_messages").create({ room: room.id ?? room, text });

    describe("stock subscriptions follow rooms joined or created after subscribing", () => {
        test("added to a room, creating one, joining a public one, a room made by a batch: all their messages arrive", async () => {
            const heard = [];
            await bob.collection("chat_messages").subscribe("*", (e) => heard.push(e));
            const heardText = (text) => heard.find((e) => e.action === "create" && e.record?.text === text);

            // 1. Alice creates a room after bob subscribed and adds him.
            const added = await newGroup(alice, "Added later", [bob]);
            await post(alice, added, "to the room bob was added to");
            await waitFor("bob hears the room he was added to", () => heardText("to the room bob was added to"));

            // 2. Bob creates a room himself and adds alice; her post and his own arrive.
            const created = await newGroup(bob, "Created later", [alice]);
            await post(alice, created, "to the room bob created");
            await post(bob, created, "bob in his own room");
            await waitFor("bob hears the room he created", () => heardText("to the room bob created"));
            await waitFor("bob hears himself in it", () => heardText("bob in his own room"));

            // 3. Bob joins a public room (his own membership record).
            const lobby = await newGroup(alice, "Public lobby", [], { is_public: true });
            await bob.collection("chat_room_users").create({ room: lobby.id, user: me(bob) });
            await post(alice, lobby, "to the lobby bob joined");
            await waitFor("bob hears the public room he joined", () => heardText("to the lobby bob joined"));

            // 4. A room, its members and a message in one batch.
            const roomId = newId();
            const batch = alice.createBatch();
            batch.collection("chat_rooms").create({ id: roomId, type: "group", name: "Batch later" });
            batch.collection("chat_room_users").create({ room: roomId, user: me(bob) });
            batch.collection("chat_messages").create({ room: roomId, text: "first words of the batch room" });
            await batch.send();
            await waitFor("bob hears the batch room's first message", () => heardText("first words of the batch room"));
            await post(alice, roomId, "second words of the batch room");
            await waitFor("bob hears the batch room's next message", () => heardText("second words of the batch room"));

            // 5. Removed from the room he was added to: nothing more of it. A message
            //    in a room he is still in comes after, to prove by order.
            const membership = await alice.collection("chat_room_users").getFirstListItem(
                alice.filter("room = {:room} && user = {:user}", { room: added.id, user: me(bob) }));
            await alice.collection("chat_room_users").delete(membership.id);
            await post(alice, added, "after bob was removed");
            await post(alice, created, "sentinel after the removal");
            await waitFor("bob hears the sentinel", () => heardText("sentinel after the removal"));
            assert.equal(heardText("after bob was removed"), undefined, "bob heard a room he was removed from");
        });

        test("the room topic of a room created after connecting can be followed at once", async () => {
            const heard = [];
            await bob.collection("chat_rooms").subscribe("*", () => {}); // connected before the room exists
            const room = await newGroup(alice, "Topic later", [bob]);
            await bob.realtime.subscribe("chat/rooms/" + room.id, (e) => heard.push(e));
            const msg = await post(alice, room, "on the new room's topic");
            await waitFor("bob hears the new room's topic", () => heard.find((e) => e.type === "message.created" && e.record.id === msg.id));
        });
    });

    describe("the event log's cursor", () => {
        test("sync without since: no events and a cursor to start from; from the latest cursor: nothing", async () => {
            const start = await sync(bob);
            assert.deepEqual(start.events, []);
            assert.equal(start.reset, false);
            assert.equal(start.more, false);
            assert.ok(typeof start.cursor === "string" && start.cursor, `a cursor: ${JSON.stringify(start)}`);
            const again = await sync(bob, { since: start.cursor });
            assert.deepEqual(again.events, []);
            assert.equal(again.more, false);
            assert.equal(again.reset, false);

            // A cursor this server never handed out (another database's, say) cannot be
            // served: reset, with the cursor to go on from once the client has reloaded.
            const foreign = await sync(bob, { since: "another-database.42" });
            assert.equal(foreign.reset, true, JSON.stringify(foreign));
            assert.deepEqual(foreign.events, []);
            assert.ok(typeof foreign.cursor === "string" && foreign.cursor);
        });

        test("every event carries a cursor (typing does not), the same one sync gives for it", async () => {
            const { cursor: start } = await sync(bob);
            const room = await newGroup(alice, "Cursors", [bob]);
            const topic = [];
            const stock = [];
            await bob.realtime.subscribe("chat/rooms/" + room.id, (e) => { if (!isNotice(e)) topic.push(e); });
            for (const c of COLLECTIONS) await bob.collection(c).subscribe("*", (e) => stock.push({ collection: c, ...e }));
            const { cursor: subscribed } = await sync(bob); // bob's own member.joined came before he listened

            const hello = await post(alice, room, "hello cursors");
            await alice.collection("chat_messages").update(hello.id, { text: "hello cursors, edited" });
            const reaction = await bob.collection("chat_message_reactions").create({ message: hello.id, reaction: "👍" });
            await bob.collection("chat_message_reactions").delete(reaction.id);
            const carolMember = await alice.collection("chat_room_users").create({ room: room.id, user: me(carol) });
            await alice.collection("chat_room_users").update(carolMember.id, { permissions: ["can_create_messages"] });
            await alice.collection("chat_room_users").delete(carolMember.id);
            await alice.collection("chat_rooms").update(room.id, { name: "Cursors, renamed" });
            await alice.send(`/api/chat/rooms/${room.id}/typing`, { method: "POST" });
            const bye = await post(alice, room, "bye cursors");
            await alice.collection("chat_messages").delete(bye.id);

            const TYPES = ["message.created", "message.updated", "reaction.created", "reaction.deleted", "member.joined",
                "member.updated", "member.left", "room.updated", "typing", "message.created", "message.deleted"];
            await waitFor("bob's room topic events", () => topic.length >= TYPES.length);
            assert.deepEqual(topic.map((e) => e.type), TYPES);
            for (const e of topic) {
                if (e.type === "typing") assert.ok(!e.cursor, `typing carries no cursor: ${JSON.stringify(e)}`);
                else assert.ok(typeof e.cursor === "string" && e.cursor, `a cursor on ${JSON.stringify(e)}`);
            }
            const logged = topic.filter((e) => e.type !== "typing");
            assert.equal(new Set(logged.map((e) => e.cursor)).size, logged.length, "one cursor per change");
            await waitFor("bob's stock events", () => stock.some((e) => e.action === "delete" && e.record.id === bye.id));
            for (const e of stock) assert.ok(typeof e.cursor === "string" && e.cursor, `a cursor on ${JSON.stringify(e)}`);
            const created = stock.find((e) => e.action === "create" && e.record.id === hello.id);
            assert.equal(created.cursor, topic[0].cursor, "a change has one cursor on both subscription styles");

            // Sync tells the same story with the same cursors: each of its events
            // is a change bob heard, and it names every record he heard of.
            const { events } = await syncAll(bob, subscribed);
            const fromSync = events.filter((e) => e.room === room.id);
            for (const e of fromSync) {
                assertWellFormed(e);
                const heard = logged.find((t) => t.cursor === e.cursor);
                assert.ok(heard, `sync's ${JSON.stringify(e)} has a cursor bob never heard`);
                assert.equal(heard.record.id, e.record.id, `the change at ${e.cursor}`);
            }
            assert.deepEqual(new Set(fromSync.map((e) => e.record.id)), new Set(logged.map((e) => e.record.id)));
            assert.deepEqual(outcome(fromSync), outcome(logged.map((e) => ({ ...e, action: ACTIONS[e.type.split(".")[1]] }))));

            // Deleting the room: one room.deleted on the topic, the cascade on the stock
            // subscriptions, all with cursors; sync gives the room.deleted with the same cursor.
            await alice.collection("chat_rooms").delete(room.id);
            const deleted = await waitFor("room.deleted", () => topic.find((e) => e.type === "room.deleted"));
            assert.ok(typeof deleted.cursor === "string" && deleted.cursor, `a cursor on ${JSON.stringify(deleted)}`);
            await waitFor("bob's stock room deletion", () => stock.some((e) => e.collection === "chat_rooms" && e.action === "delete"));
            for (const e of stock) assert.ok(typeof e.cursor === "string" && e.cursor, `a cursor on ${JSON.stringify(e)}`);
            const afterDelete = await syncAll(bob, start);
            const roomDeleted = afterDelete.events.find((e) => e.type === "room.deleted" && e.room === room.id);
            assert.equal(roomDeleted?.cursor, deleted.cursor, JSON.stringify(afterDelete.events.filter((e) => e.room === room.id)));
        });
    });

    describe("catching up", () => {
        test("a sync after a disconnect returns exactly the missed events, oldest first, in pages", async () => {
            const group = await newGroup(alice, "Away", [bob]);
            const elsewhere = await newGroup(alice, "Not bob's", [carol]);
            const old = await post(alice, group, "before the disconnect");
            const kept = await post(alice, group, "kept through the gap");

            // Bob follows the room and remembers the cursor of the last event he saw.
            const heard = [];
            await bob.realtime.subscribe("chat/rooms/" + group.id, (e) => heard.push(e));
            const seen = await post(alice, group, "the last thing bob saw");
            await waitFor("bob's last event", () => heard.find((e) => e.record?.id === seen.id));
            const cursor = heard.at(-1).cursor;
            assert.ok(cursor, "the event carries a cursor");

            // Bob goes away: his SSE connection closes.
            await bob.realtime.unsubscribe();
            assert.equal(bob.realtime.isConnected, false);

            // Meanwhile, in bob's room and elsewhere.
            const m1 = await post(alice, group, "missed one");
            const m2 = await post(alice, group, "missed two");
            await alice.collection("chat_messages").update(m1.id, { text: "missed one, edited" });
            await alice.collection("chat_messages").delete(m2.id);
            await alice.collection("chat_messages").delete(old.id);
            const r = await alice.collection("chat_message_reactions").create({ message: kept.id, reaction: "🎉" });
            await post(alice, elsewhere, "not for bob");
            const carolIn = await alice.collection("chat_room_users").create({ room: group.id, user: me(carol) });
            await alice.collection("chat_rooms").update(group.id, { name: "Away, renamed" });

            const all = await syncAll(bob, cursor);
            all.events.forEach(assertWellFormed);
            // Only bob's room.
            assert.deepEqual(all.events.filter((e) => e.room !== group.id), [], "events of a room bob is not in");
            // Every change of the gap, oldest first: each record at its last change, in its final state.
            const final = lastPerRecord(all.events);
            assert.deepEqual([...final.keys()], [m1.id, m2.id, old.id, r.id, carolIn.id, group.id],
                JSON.stringify(all.events.map((e) => [e.type, e.record.id])));
            assert.deepEqual(outcome(all.events), {
                [m1.id]: { text: "missed one, edited", user: me(alice) },
                [m2.id]: "deleted",
                [old.id]: "deleted",
                [r.id]: { reaction: "🎉", user: me(alice) },
                [carolIn.id]: { user: me(carol), permissions: carolIn.permissions },
                [group.id]: { name: "Away, renamed" },
            });
            assert.ok(["message.created", "message.updated"].includes(final.get(m1.id).type));
            assert.equal(final.get(r.id).type, "reaction.created");
            assert.equal(final.get(r.id).record.message, kept.id);
            assert.equal(final.get(carolIn.id).type, "member.joined");
            assert.equal(final.get(group.id).type, "room.updated");
            // Deletes are tombstones naming the record, its collection and its room.
            const tombstone = final.get(m2.id);
            assert.deepEqual([tombstone.type, tombstone.record.id, tombstone.record.room, tombstone.record.collectionName],
                ["message.deleted", m2.id, group.id, "chat_messages"]);
            assert.equal(final.get(old.id).type, "message.deleted");
            assert.equal(new Set(all.events.map((e) => e.cursor)).size, all.events.length, "one cursor per event");

            // The same in pages of two, following `more`.
            const paged = await syncAll(bob, cursor, 2);
            assert.deepEqual(outcome(paged.events), outcome(all.events));
            assert.deepEqual([...lastPerRecord(paged.events).keys()], [...final.keys()]);
            assert.equal(paged.cursor, all.cursor);

            // From the cursor it was given, nothing more is waiting for bob.
            const rest = await sync(bob, { since: all.cursor });
            assert.deepEqual(rest.events, []);
        });

        test("a member removed during the gap gets their member.left and nothing else of the room", async () => {
            const group = await newGroup(alice, "Left behind", [bob]);
            const { cursor } = await sync(bob);
            await post(alice, group, "while bob is away");
            const bobsMembership = await alice.collection("chat_room_users").getFirstListItem(
                alice.filter("room = {:room} && user = {:user}", { room: group.id, user: me(bob) }));
            await alice.collection("chat_room_users").delete(bobsMembership.id);
            await post(alice, group, "after bob left");
            await alice.collection("chat_rooms").update(group.id, { name: "Left behind, renamed" });

            // The room is gone for bob: what happened in it (whose records may
            // have changed since he left) is not his to read.
            const all = await syncAll(bob, cursor);
            assert.deepEqual(all.events.filter((e) => e.room === group.id).map((e) => [e.type, e.record.id, e.record.user]),
                [["member.left", bobsMembership.id, me(bob)]]);
        });

        test("the SDK recipe: remember the cursor, sync after every PB_CONNECT; a dropped connection loses nothing", async () => {
            const group = await newGroup(alice, "Dropped", [bob]);
            const first = await post(alice, group, "first");

            // Bob's client: a starting cursor, then one load, then only realtime events and sync.
            let { cursor } = await sync(bob);
            const messages = new Map(); // id → text
            (await bob.collection("chat_messages").getFullList({ filter: bob.filter("room = {:r}", { r: group.id }) }))
                .forEach((m) => messages.set(m.id, m.text));
            const apply = (e) => {
                if (e.cursor) cursor = e.cursor;
                if ((e.room ?? e.record?.room) !== group.id) return;
                if (e.action === "delete") messages.delete(e.record.id);
                else messages.set(e.record.id, e.record.text);
            };
            let connects = 0;
            let syncs = 0;
            let syncError = null;
            await bob.realtime.subscribe("PB_CONNECT", async () => {
                connects++;
                try {
                    for (let more = true; more;) {
                        const res = await sync(bob, { since: cursor });
                        assert.equal(res.reset, false, "sync answered reset");
                        res.events.filter((e) => e.collection === "chat_messages").forEach(apply);
                        cursor = res.cursor;
                        more = res.more;
                    }
                    syncs++;
                } catch (err) {
                    syncError = err;
                }
            });
            const synced = (n) => {
                if (syncError) throw syncError;
                return syncs === n;
            };
            await bob.collection("chat_messages").subscribe("*", (e) => apply({ room: e.record.room, ...e }));
            const live = await post(alice, group, "live");
            await waitFor("bob hears the live message", () => messages.has(live.id));
            assert.equal(connects, 1, "PB_CONNECT fires on the first connect too");
            await waitFor("the first sync", () => synced(1));

            // The connection drops and stays down while alice writes.
            let disconnects = 0;
            bob.realtime.onDisconnect = (active) => active.length && disconnects++;
            realtimeLinks.cut();
            await waitFor("bob's client notices", () => disconnects === 1 && !bob.realtime.isConnected);
            const gap = await post(alice, group, "during the gap");
            await alice.collection("chat_messages").update(first.id, { text: "first, edited during the gap" });
            await alice.collection("chat_messages").delete(live.id);
            const gone = await post(alice, group, "posted and deleted during the gap");
            await alice.collection("chat_messages").delete(gone.id);

            // Back: the SDK reconnects by itself, PB_CONNECT fires, sync catches up.
            realtimeLinks.restore();
            await waitFor("bob's client reconnects and syncs", () => synced(2), 15_000);
            const after = await post(alice, group, "after the gap");
            await waitFor("bob hears the next message live", () => messages.has(after.id));

            const server = await alice.collection("chat_messages").getFullList({ filter: alice.filter("room = {:r}", { r: group.id }) });
            assert.deepEqual(new Map(server.map((m) => [m.id, m.text])), messages);
            assert.ok(messages.has(gap.id) && !messages.has(live.id) && !messages.has(gone.id));
        });
    });
});
