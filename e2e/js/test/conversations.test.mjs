// Conversations (SPEC "Version 2 → Conversations") through the official
// PocketBase JS SDK: replies, threads, mentions, pins, read receipts, system
// messages, bans, silence, slow mode, reports and a document attachment, in the
// topology PBCHAT_TOPOLOGY names (lib/harness.mjs). README "4. Conversations"
// is copied from the calls here; keep the two in step.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { me, rejectsWith, sleep, startSuite, topology } from "../lib/harness.mjs";

describe(`conversations through the PocketBase JS SDK (${topology})`, () => {
    let suite, alice, bob, carol, dave;
    let room; // a group: alice (creator: every permission), bob and carol (group defaults)

    before(async () => {
        suite = await startSuite();
        [alice, bob, carol, dave] = await Promise.all(["alice", "bob", "carol", "dave"].map(suite.login));
        room = await alice.collection("chat_rooms").create({ type: "group", name: "Conversations" });
        await alice.collection("chat_room_users").create({ room: room.id, user: me(bob) });
        await alice.collection("chat_room_users").create({ room: room.id, user: me(carol) });
    });

    after(async () => {
        await suite?.stop();
    });

    test("reply: reply_to a message of the room; a reply outlives its parent", async () => {
        const question = await alice.collection("chat_messages").create({ room: room.id, text: "Lunch at noon?" });

        // Reply: reply_to names a message of the same room.
        const reply = await bob.collection("chat_messages").create({
            room: room.id,
            text: "Yes!",
            reply_to: question.id,
        });
        const shown = await carol.collection("chat_messages").getOne(reply.id, { expand: "reply_to" });
        // shown.expand.reply_to is the parent; reply_to_id keeps its id
        assert.equal(shown.expand.reply_to.text, "Lunch at noon?");
        assert.equal(shown.reply_to_id, question.id);

        // The parent deleted: reply_to is unset, reply_to_id stays ("deleted message").
        await alice.collection("chat_messages").delete(question.id);
        const orphan = await carol.collection("chat_messages").getOne(reply.id);
        const parentDeleted = orphan.reply_to_id !== "" && orphan.reply_to === "";
        assert.ok(parentDeleted, JSON.stringify(orphan));

        // A message of another room is refused: 400 naming reply_to.
        const other = await alice.collection("chat_rooms").create({ type: "group", name: "Elsewhere" });
        const elsewhere = await alice.collection("chat_messages").create({ room: other.id, text: "elsewhere" });
        await assert.rejects(
            alice.collection("chat_messages").create({ room: room.id, text: "x", reply_to: elsewhere.id }),
            (err) => err.status === 400 && err.response.data.reply_to !== undefined,
        );
    });

    test("thread: replies name their root; the root counts them; GET /api/chat/threads", async () => {
        const root = await alice.collection("chat_messages").create({ room: room.id, text: "Plan the trip here" });

        // Reply in a thread: thread names the root message.
        await bob.collection("chat_messages").create({ room: room.id, text: "I'll book the train", thread: root.id });
        await carol.collection("chat_messages").create({ room: room.id, text: "I'll bring snacks", thread: root.id });

        // The root carries thread_count and thread_last_reply_at (server-set).
        const counted = await alice.collection("chat_messages").getOne(root.id);
        // counted.thread_count === 2

        // The thread's replies, oldest first.
        const replies = await alice.collection("chat_messages").getFullList({
            filter: alice.filter("thread = {:root}", { root: root.id }),
            sort: "created",
        });

        // The caller's threads in a room (posted in or mentioned in), with unread counts.
        const { items } = await alice.send("/api/chat/threads", { query: { room: room.id } });
        const mine = items.find((t) => t.root.id === root.id); // { root, unread }: replies by others not yet read
        assert.equal(counted.thread_count, 2);
        assert.notEqual(counted.thread_last_reply_at, "");
        assert.deepEqual(
            replies.map((m) => m.text),
            ["I'll book the train", "I'll bring snacks"],
        );
        assert.equal(mine.unread, 2);
        // Bob posted in it: the thread is his too; his own reply is not unread.
        const bobThreads = await bob.send("/api/chat/threads", { query: { room: room.id } });
        assert.equal(bobThreads.items.find((t) => t.root.id === root.id)?.unread, 1, JSON.stringify(bobThreads));
        // Dave is in no thread of the room (and not in the room): 404.
        await rejectsWith(dave.send("/api/chat/threads", { query: { room: room.id } }), 404);

        // A reply is not a root: 400 naming thread.
        const reply = replies[0];
        await assert.rejects(
            carol.collection("chat_messages").create({ room: room.id, text: "x", thread: reply.id }),
            (err) => err.status === 400 && err.response.data.thread !== undefined,
        );
    });

    test("mentions: members only; unread mention counts", async () => {
        await bob.send(`/api/chat/rooms/${room.id}/read`, { method: "POST" });
        await sleep(5);

        // Mention: mentions lists user ids, every one a member of the room.
        await alice.collection("chat_messages").create({
            room: room.id,
            text: "@bob can you check?",
            mentions: [me(bob)],
        });

        // Bob's unread mentions, in total and per room.
        const unread = await bob.send("/api/chat/unread"); // { total, rooms, mentions: { total, rooms } }
        const rooms = await bob.send("/api/chat/rooms"); // items[].unread_mentions
        assert.equal(unread.mentions.rooms[room.id], 1);
        assert.ok(unread.mentions.total >= 1);
        assert.equal(rooms.items.find((i) => i.room.id === room.id).unread_mentions, 1);

        // A non-member is refused: 400 naming mentions.
        await assert.rejects(
            alice.collection("chat_messages").create({ room: room.id, text: "@dave", mentions: [me(dave)] }),
            (err) => err.status === 400 && err.response.data.mentions !== undefined,
        );
    });

    test("pins: can_pin_messages pins and unpins; the pinned list", async () => {
        const rule = await alice.collection("chat_messages").create({ room: room.id, text: "House rules: be kind" });

        // Pin (alice created the room: she holds can_pin_messages).
        await alice.collection("chat_messages").update(rule.id, { pinned: true });

        // The room's pinned messages, newest pin first.
        const pinned = await bob.collection("chat_messages").getFullList({
            filter: bob.filter("room = {:room} && pinned_at != ''", { room: room.id }),
            sort: "-pinned_at",
        });
        assert.deepEqual(
            pinned.map((m) => [m.id, m.pinned_by]),
            [[rule.id, me(alice)]],
        );

        // Without the permission: 403 naming it.
        await rejectsWith(bob.collection("chat_messages").update(rule.id, { pinned: false }), 403, /can_pin_messages/);

        // Unpin.
        await alice.collection("chat_messages").update(rule.id, { pinned: false });
        const unpinned = await bob.collection("chat_messages").getOne(rule.id);
        assert.equal(unpinned.pinned_at, "");
    });

    test("read receipts: who has read up to which message", async () => {
        const last = await alice.collection("chat_messages").create({ room: room.id, text: "Did everyone see this?" });
        await sleep(5);

        // Carol reads the room (a member.updated event to the room).
        await carol.send(`/api/chat/rooms/${room.id}/read`, { method: "POST" });

        // Receipts: [{ user, last_seen_at, last_read_message }] for every member.
        const { items } = await alice.send(`/api/chat/rooms/${room.id}/receipts`);
        const carolRead = items.find((r) => r.user === me(carol));
        assert.equal(carolRead.last_read_message, last.id);
        assert.notEqual(carolRead.last_seen_at, "");

        // Not a member: 404.
        await rejectsWith(dave.send(`/api/chat/rooms/${room.id}/receipts`), 404);
    });

    test("system messages: notices of additions and renames, never edited", async () => {
        const notices = await bob.collection("chat_messages").getFullList({
            filter: bob.filter("room = {:room} && system != ''", { room: room.id }),
            sort: "created",
        });
        // [{ system: "member_added", system_data: { user, by, … } }, …]
        const added = notices.filter((m) => m.system === "member_added").map((m) => m.system_data.user);
        assert.ok(added.includes(me(bob)) && added.includes(me(carol)), JSON.stringify(notices));

        // Nobody edits one, not even the room's creator.
        await assert.rejects(alice.collection("chat_messages").update(notices[0].id, { text: "rewritten" }), (err) =>
            [400, 403].includes(err.status),
        );
    });

    test("moderation: ban, silence, slow mode, reports", async () => {
        const hall = await alice.collection("chat_rooms").create({ type: "group", name: "Town hall", is_public: true });
        const daveMember = await dave.collection("chat_room_users").create({ room: hall.id, user: me(dave) });
        await alice.collection("chat_room_users").create({ room: hall.id, user: me(bob) });

        // Ban dave (alice holds can_remove_users): his membership goes with it.
        const ban = await alice.collection("chat_room_bans").create({
            room: hall.id,
            user: me(dave),
            reason: "spam",
            // until: "2030-01-01 00:00:00.000Z" (leave it out: forever)
        });
        await rejectsWith(dave.collection("chat_room_users").getOne(daveMember.id), 404);

        // A banned user cannot join again: 403 naming banned.
        await rejectsWith(dave.collection("chat_room_users").create({ room: hall.id, user: me(dave) }), 403, /banned/);

        // Unban: delete the ban.
        await alice.collection("chat_room_bans").delete(ban.id);
        await dave.collection("chat_room_users").create({ room: hall.id, user: me(dave) });

        // Silence bob for an hour: PATCH his membership's silenced_until.
        const bobMember = await alice.collection("chat_room_users").getFirstListItem(
            alice.filter("room = {:room} && user = {:user}", { room: hall.id, user: me(bob) }),
        );
        const hour = new Date(Date.now() + 3600_000).toISOString().replace("T", " ");
        await alice.collection("chat_room_users").update(bobMember.id, { silenced_until: hour });

        // Bob cannot post (403 naming silenced) but still reacts.
        const notice = await alice.collection("chat_messages").create({ room: hall.id, text: "Meeting at 5" });
        await rejectsWith(bob.collection("chat_messages").create({ room: hall.id, text: "hey" }), 403, /silenced/);
        await bob.collection("chat_message_reactions").create({ message: notice.id, reaction: "👍" });
        await alice.collection("chat_room_users").update(bobMember.id, { silenced_until: "" });

        // Slow mode (can_edit_room): one post per 60 s for members without can_delete_messages.
        await alice.collection("chat_rooms").update(hall.id, { slow_mode_seconds: 60 });
        await dave.collection("chat_messages").create({ room: hall.id, text: "first" });
        // (a second post within the minute: 429 with Retry-After in seconds)
        await rejectsWith(dave.collection("chat_messages").create({ room: hall.id, text: "second" }), 429);

        // The 429 carries Retry-After (seconds).
        const raw = await fetch(`${dave.baseURL}/api/collections/chat_messages/records`, {
            method: "POST",
            headers: { "Content-Type": "application/json", Authorization: dave.authStore.token },
            body: JSON.stringify({ room: hall.id, text: "third" }),
        });
        assert.equal(raw.status, 429);
        assert.ok(Number(raw.headers.get("Retry-After")) > 0, `Retry-After ${raw.headers.get("Retry-After")}`);
        await alice.collection("chat_messages").create({ room: hall.id, text: "moderators are not slowed" });

        // Report a message (any member); reporter is the caller.
        const report = await dave.collection("chat_message_reports").create({
            message: notice.id,
            reason: "Misleading time",
        });
        assert.equal(report.reporter, me(dave));

        // Reports are visible to the reporter, holders of can_delete_messages and superusers.
        const forModerators = await alice.collection("chat_message_reports").getFullList({
            filter: alice.filter("room = {:room}", { room: hall.id }), // room: set by the server
        });
        assert.deepEqual(
            forModerators.map((r) => r.id),
            [report.id],
        );
        const forBob = await bob.collection("chat_message_reports").getFullList();
        assert.equal(forBob.length, 0);
    });

    test("a document attachment: a PDF is uploaded, posted and downloaded", async () => {
        const pdf = Buffer.from("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n");

        // Upload any allowed type (Config.MediaTypes): here a PDF.
        const form = new FormData();
        form.append("file", new Blob([pdf], { type: "application/pdf" }), "minutes.pdf");
        const doc = await alice.collection("chat_media").create(form);
        await alice.collection("chat_messages").create({ room: room.id, text: "The minutes", media: [doc.id] });

        // Download it as a file (?download=1) with a file token.
        const token = await bob.files.getToken();
        const res = await fetch(bob.files.getURL(doc, doc.file, { token, download: 1 }));
        assert.equal(res.status, 200);
        assert.match(res.headers.get("content-disposition") ?? "", /attachment/);
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), pdf);
    });
});
