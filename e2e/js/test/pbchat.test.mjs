// pbchat end to end through the official PocketBase JS SDK: a real server
// (built from this repo, filled by `chat demo`), real users, real HTTP and SSE,
// in the topology PBCHAT_TOPOLOGY names (lib/harness.mjs; `npm test` runs both).
// The calls here are the ones the README's flows show; keep the two in step.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { makePNG, pngSize } from "../../lib/png.mjs";
import { me, newId, rejectsWith, sleep, sorted, startSuite, topology, waitFor } from "../lib/harness.mjs";

const GROUP_MEMBER_DEFAULT = ["can_add_users", "can_create_messages", "can_delete_own_messages", "can_edit_own_messages"];

describe(`pbchat through the PocketBase JS SDK (${topology})`, () => {
    let suite, alice, bob, carol, dave;

    before(async () => {
        suite = await startSuite();
        [alice, bob, carol, dave] = await Promise.all(["alice", "bob", "carol", "dave"].map(suite.login));
    });

    after(async () => {
        await suite?.stop();
    });

    describe("the seed's three flows", () => {
        test("send a picture: upload, post with media, read back with expand, download with a file token", async () => {
            const room = await alice.collection("chat_rooms").create({ type: "group", name: "Pictures" });
            await alice.collection("chat_room_users").create({ room: room.id, user: me(bob) });

            // 1. Upload the picture (multipart, field `file`).
            const png = makePNG(640, 400);
            const form = new FormData();
            form.append("file", new Blob([png], { type: "image/png" }), "pic.png");
            const media = await alice.collection("chat_media").create(form);
            assert.equal(media.uploaded_by, me(alice));
            assert.match(media.file, /^pic_\w+\.png$/);

            // 2. Post the message with the media ids.
            const message = await alice.collection("chat_messages").create({
                room: room.id,
                text: "Look at this",
                media: [media.id],
            });
            assert.equal(message.user, me(alice));
            assert.equal(message.text, "Look at this");

            // 3. Another member reads it back with the attachments expanded.
            const read = await bob.collection("chat_messages").getOne(message.id, {
                expand: "chat_message_media_via_message.media",
            });
            const links = read.expand?.chat_message_media_via_message;
            assert.equal(links?.length, 1, JSON.stringify(read));
            assert.equal(links[0].sequence, 0);
            const attached = links[0].expand.media;
            assert.equal(attached.id, media.id);
            assert.equal(attached.file, media.file);

            // 4. The file is protected: a URL without a token is refused.
            const bare = await fetch(bob.files.getURL(attached, attached.file));
            assert.equal(bare.status, 404);

            // 5. With a file token the member downloads the original and a thumb.
            const token = await bob.files.getToken();
            const original = await fetch(bob.files.getURL(attached, attached.file, { token }));
            assert.equal(original.status, 200);
            assert.deepEqual(Buffer.from(await original.arrayBuffer()), png);
            const thumb = await fetch(bob.files.getURL(attached, attached.file, { thumb: "100x100", token }));
            assert.equal(thumb.status, 200);
            assert.deepEqual(pngSize(await thumb.arrayBuffer()), { width: 100, height: 100 });
            const wide = await fetch(bob.files.getURL(attached, attached.file, { thumb: "480x0", token }));
            assert.deepEqual(pngSize(await wide.arrayBuffer()), { width: 480, height: 300 });

            // 6. A non-member's own valid token gets nothing, nor does the record.
            const carolToken = await carol.files.getToken();
            const foreign = await fetch(carol.files.getURL(attached, attached.file, { token: carolToken }));
            assert.equal(foreign.status, 404);
            await rejectsWith(carol.collection("chat_messages").getOne(message.id), 404);
        });

        test("group of three as separate calls", async () => {
            const room = await alice.collection("chat_rooms").create({ type: "group", name: "Weekend trip (calls)" });
            const bobMember = await alice.collection("chat_room_users").create({ room: room.id, user: me(bob) });
            const carolMember = await alice.collection("chat_room_users").create({ room: room.id, user: me(carol) });
            await alice.collection("chat_messages").create({ room: room.id, text: "Alice created a chat" });

            assert.equal(room.created_by, me(alice));
            assert.deepEqual(sorted(bobMember.permissions), GROUP_MEMBER_DEFAULT);
            assert.deepEqual(sorted(carolMember.permissions), GROUP_MEMBER_DEFAULT);
            await assertGroupOfThree(room.id);
        });

        test("group of three as one batch with a client-chosen room id", async () => {
            const roomId = newId();
            const batch = alice.createBatch();
            batch.collection("chat_rooms").create({ id: roomId, type: "group", name: "Weekend trip (batch)" });
            batch.collection("chat_room_users").create({ room: roomId, user: me(bob) });
            batch.collection("chat_room_users").create({ room: roomId, user: me(carol) });
            batch.collection("chat_messages").create({ room: roomId, text: "Alice created a chat" });
            const results = await batch.send();

            assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200]);
            assert.equal(results[0].body.id, roomId);
            assert.equal(results[0].body.created_by, me(alice));
            assert.deepEqual(sorted(results[1].body.permissions), GROUP_MEMBER_DEFAULT);
            await assertGroupOfThree(roomId);

            // The batch is one transaction: a failing request leaves nothing behind.
            const failedId = newId();
            const bad = alice.createBatch();
            bad.collection("chat_rooms").create({ id: failedId, type: "group", name: "Never saved" });
            bad.collection("chat_room_users").create({ room: failedId, user: me(bob) });
            bad.collection("chat_messages").create({ room: failedId, text: "x".repeat(4001) }); // over MaxMessageLength
            await assert.rejects(bad.send(), (err) => {
                assert.equal(err.status, 400, JSON.stringify(err.response));
                assert.deepEqual(Object.keys(err.response.data?.requests ?? {}), ["2"], JSON.stringify(err.response));
                return true;
            });
            await rejectsWith(alice.collection("chat_rooms").getOne(failedId), 404);
            const bobsRooms = await bob.collection("chat_room_users").getFullList({
                filter: bob.filter("room = {:room}", { room: failedId }),
            });
            assert.equal(bobsRooms.length, 0);
        });

        // assertGroupOfThree checks what the group flow leaves, however it was sent.
        async function assertGroupOfThree(roomId) {
            const members = await carol.collection("chat_room_users").getFullList({
                filter: carol.filter("room = {:room}", { room: roomId }),
            });
            assert.deepEqual(sorted(members.map((m) => m.user)), sorted([me(alice), me(bob), me(carol)]));
            const creator = members.find((m) => m.user === me(alice));
            assert.equal(creator.permissions.length, 10, `creator's permissions: ${creator.permissions}`);
            for (const pb of [bob, carol]) {
                const messages = await pb.collection("chat_messages").getFullList({
                    filter: pb.filter("room = {:room}", { room: roomId }),
                });
                // Besides the notices of the additions (system messages).
                assert.deepEqual(
                    messages.filter((m) => !m.system).map((m) => [m.user, m.text]),
                    [[me(alice), "Alice created a chat"]],
                );
            }
            // An outsider sees none of it.
            await rejectsWith(dave.collection("chat_rooms").getOne(roomId), 404);
        }

        test("news channel: an editor posts, a reader reads and reacts but cannot post", async () => {
            const channel = await alice.collection("chat_rooms").create({
                type: "channel",
                name: "Release notes",
                description: "Editors post, readers react",
            });
            const editor = await alice.collection("chat_room_users").create({
                room: channel.id,
                user: me(bob),
                permissions: ["can_create_messages", "can_edit_own_messages", "can_delete_own_messages"],
            });
            const reader = await alice.collection("chat_room_users").create({
                room: channel.id,
                user: me(carol),
                permissions: [],
            });
            assert.deepEqual(sorted(editor.permissions), ["can_create_messages", "can_delete_own_messages", "can_edit_own_messages"]);
            assert.deepEqual(reader.permissions, []);

            const post = await bob.collection("chat_messages").create({ room: channel.id, text: "v1.0 is out" });
            assert.equal(post.user, me(bob));

            // The reader cannot post: 403 naming the missing permission.
            await rejectsWith(
                carol.collection("chat_messages").create({ room: channel.id, text: "me too" }),
                403,
                /can_create_messages/,
            );

            // The reader reads...
            const seen = await carol.collection("chat_messages").getFullList({
                filter: carol.filter("room = {:room}", { room: channel.id }),
            });
            assert.deepEqual(seen.filter((m) => !m.system).map((m) => m.text), ["v1.0 is out"]);

            // ...and reacts.
            const reaction = await carol.collection("chat_message_reactions").create({ message: post.id, reaction: "🎉" });
            assert.equal(reaction.user, me(carol));
            const reactions = await bob.collection("chat_message_reactions").getFullList({
                filter: bob.filter("message = {:message}", { message: post.id }),
            });
            assert.deepEqual(reactions.map((r) => [r.user, r.reaction]), [[me(carol), "🎉"]]);
        });
    });

    describe("realtime", () => {
        test("members hear a room on both subscription styles; an outsider hears nothing and is refused", async () => {
            const group = await alice.collection("chat_rooms").create({ type: "group", name: "Realtime" });
            await alice.collection("chat_room_users").create({ room: group.id, user: me(bob) });
            // A room carol IS in, to prove by ordering that she heard nothing of the group.
            const carolsRoom = await alice.collection("chat_rooms").create({ type: "group", name: "Alice and Carol" });
            await alice.collection("chat_room_users").create({ room: carolsRoom.id, user: me(carol) });

            const bobStock = [], bobTopic = [], carolStock = [];
            await bob.collection("chat_messages").subscribe("*", (e) => bobStock.push(e));
            await bob.realtime.subscribe("chat/rooms/" + group.id, (e) => bobTopic.push(e));
            await carol.collection("chat_messages").subscribe("*", (e) => carolStock.push(e));

            // An outsider's room topic is refused (403): the SDK's promise rejects.
            await rejectsWith(carol.realtime.subscribe("chat/rooms/" + group.id, () => {}), 403);
            // The SDK keeps a refused topic locally; drop it so later submits don't repeat it.
            await carol.realtime.unsubscribe("chat/rooms/" + group.id);

            // Alice posts in the group: bob hears it on both subscriptions.
            const hello = await alice.collection("chat_messages").create({ room: group.id, text: "Hello realtime" });
            const stockEvent = await waitFor("bob's stock event", () => bobStock.find((e) => e.record?.id === hello.id));
            assert.equal(stockEvent.action, "create");
            assert.equal(stockEvent.record.room, group.id);
            assert.equal(stockEvent.record.user, me(alice));
            assert.equal(stockEvent.record.text, "Hello realtime");
            const topicEvent = await waitFor("bob's room topic event", () =>
                bobTopic.find((e) => e.type === "message.created"),
            );
            assert.equal(topicEvent.record.id, hello.id);
            assert.equal(topicEvent.record.text, "Hello realtime");

            // Then alice posts where carol is a member: that is the first thing carol hears.
            const forCarol = await alice.collection("chat_messages").create({ room: carolsRoom.id, text: "Hi Carol" });
            await waitFor("carol's first stock event", () => carolStock.length > 0);
            assert.equal(carolStock[0].action, "create");
            assert.equal(carolStock[0].record.id, forCarol.id, `carol heard ${JSON.stringify(carolStock[0])}`);
            assert.ok(!carolStock.some((e) => e.record?.room === group.id), "carol heard the group");
            // And bob, not in carol's room, did not hear that one.
            assert.ok(!bobStock.some((e) => e.record?.id === forCarol.id), "bob heard carol's room");
        });

        test("typing reaches the other members, not the typist", async () => {
            const room = await alice.collection("chat_rooms").create({ type: "group", name: "Typing" });
            await alice.collection("chat_room_users").create({ room: room.id, user: me(bob) });
            const aliceTopic = [], bobTopic = [];
            await alice.realtime.subscribe("chat/rooms/" + room.id, (e) => aliceTopic.push(e));
            await bob.realtime.subscribe("chat/rooms/" + room.id, (e) => bobTopic.push(e));
            const typingOf = (events) => events.filter((e) => e.type === "typing").map((e) => e.record.user);

            // Alice types: bob hears it.
            await alice.send(`/api/chat/rooms/${room.id}/typing`, { method: "POST" });
            const heard = await waitFor("bob hears alice typing", () => bobTopic.find((e) => e.type === "typing"));
            assert.deepEqual(heard.record, { room: room.id, user: me(alice) });

            // Bob types: the first typing alice hears is bob's, so she never heard her own.
            await bob.send(`/api/chat/rooms/${room.id}/typing`, { method: "POST" });
            await waitFor("alice hears bob typing", () => typingOf(aliceTopic).length > 0);
            assert.deepEqual(typingOf(aliceTopic), [me(bob)]);

            // A message after both: once bob has it, his own typing would have arrived before it.
            const done = await alice.collection("chat_messages").create({ room: room.id, text: "done typing" });
            await waitFor("bob hears the message", () => bobTopic.some((e) => e.record?.id === done.id));
            assert.deepEqual(typingOf(bobTopic), [me(alice)]);
            await waitFor("alice hears the message", () => aliceTopic.some((e) => e.record?.id === done.id));
            assert.deepEqual(typingOf(aliceTopic), [me(bob)]);

            // Typing in a room one is not in is refused.
            await rejectsWith(dave.send(`/api/chat/rooms/${room.id}/typing`, { method: "POST" }), 404);
        });
    });

    describe("overview routes", () => {
        test("GET /api/chat/rooms and /api/chat/unread count unread messages; POST read zeroes them", async () => {
            const room = await alice.collection("chat_rooms").create({ type: "group", name: "Unread" });
            await alice.collection("chat_room_users").create({ room: room.id, user: me(bob) });
            await alice.collection("chat_room_users").create({ room: room.id, user: me(carol) });
            await sleep(5); // messages strictly after the memberships' `created`
            await alice.collection("chat_messages").create({ room: room.id, text: "one" });
            await alice.collection("chat_messages").create({ room: room.id, text: "two" });
            const last = await bob.collection("chat_messages").create({ room: room.id, text: "three" });

            // Bob: alice's two count, his own does not; the room is his newest activity.
            const bobRooms = await bob.send("/api/chat/rooms", { query: { perPage: 50 } });
            assert.equal(bobRooms.page, 1);
            assert.equal(bobRooms.items[0].room.id, room.id, "newest activity first");
            const item = bobRooms.items[0];
            assert.equal(item.unread_count, 2);
            assert.equal(item.membership.user, me(bob));
            assert.equal(item.membership.room, room.id);
            assert.deepEqual(
                { id: item.last_message.id, user: item.last_message.user, text: item.last_message.text },
                { id: last.id, user: me(bob), text: "three" },
            );
            assert.equal(bobRooms.totalItems, bobRooms.items.length);

            // Carol: all three count.
            const carolBefore = await carol.send("/api/chat/unread");
            assert.equal(carolBefore.rooms[room.id], 3);
            const others = Object.entries(carolBefore.rooms).filter(([id]) => id !== room.id);
            assert.equal(carolBefore.total, 3 + others.reduce((sum, [, n]) => sum + n, 0));

            // Muting leaves the room out of the total, not out of `rooms`.
            const carolMember = await carol.collection("chat_room_users").getFirstListItem(
                carol.filter("room = {:room} && user = {:user}", { room: room.id, user: me(carol) }),
            );
            await carol.collection("chat_room_users").update(carolMember.id, { muted: true });
            const carolMuted = await carol.send("/api/chat/unread");
            assert.equal(carolMuted.rooms[room.id], 3);
            assert.equal(carolMuted.total, carolBefore.total - 3);
            await carol.collection("chat_room_users").update(carolMember.id, { muted: false });

            // POST read zeroes the room for that user only.
            const marked = await bob.send(`/api/chat/rooms/${room.id}/read`, { method: "POST" });
            assert.equal(marked.user, me(bob));
            assert.notEqual(marked.last_seen_at, "");
            const bobUnread = await bob.send("/api/chat/unread");
            assert.equal(bobUnread.rooms[room.id], 0);
            const bobRoomsAfter = await bob.send("/api/chat/rooms");
            assert.equal(bobRoomsAfter.items.find((i) => i.room.id === room.id).unread_count, 0);
            assert.equal((await carol.send("/api/chat/unread")).rooms[room.id], 3);

            await carol.send(`/api/chat/rooms/${room.id}/read`, { method: "POST" });
            const carolAfter = await carol.send("/api/chat/unread");
            assert.equal(carolAfter.rooms[room.id], 0);
            assert.equal(carolAfter.total, carolBefore.total - 3);

            // A new message counts again.
            await sleep(5);
            await alice.collection("chat_messages").create({ room: room.id, text: "four" });
            assert.equal((await bob.send("/api/chat/unread")).rooms[room.id], 1);

            // Not a member: 404, and the room is not in the outsider's lists.
            await rejectsWith(dave.send(`/api/chat/rooms/${room.id}/read`, { method: "POST" }), 404);
            assert.equal((await dave.send("/api/chat/unread")).rooms[room.id], undefined);
        });
    });
});
