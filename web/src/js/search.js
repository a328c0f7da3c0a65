// Message search: a dialog that asks GET /api/chat/search as the user types,
// lists the messages found (newest first, the matched parts marked) and
// opens the one picked in its room, scrolled to it.
import { pb, userById, displayName, errorText } from "./pb.js";
import { h, modal, clockTime, dayLabel, parseDate } from "./dom.js";
import { roomItem, roomTitle } from "./rooms.js";

const PER_PAGE = 20;
const TYPING_PAUSE = 250; // ms after the last key before asking

/** Opens the search dialog. */
export function openSearch() {
    const input = h("input.search-input", { type: "search", placeholder: "Search messages", "aria-label": "Search messages", autocomplete: "off" });
    const status = h("p.search-status", { "aria-live": "polite" });
    const list = h("ol.search-results");
    const more = h("button.link.search-more", { type: "button", hidden: true }, "More results");
    const dialog = modal("Search messages", [input, status, list, more], { wide: true });

    let query = "";
    let page = 0;
    let asked = 0; // the latest request: older answers are dropped
    let timer = 0;

    async function ask(reset) {
        const q = input.value.trim();
        if (reset) {
            query = q;
            page = 0;
            list.replaceChildren();
            more.hidden = true;
        }
        if (!query) {
            status.textContent = "";
            return;
        }
        const n = ++asked;
        status.textContent = "Searching…";
        try {
            const res = await pb.send("/api/chat/search", { query: { q: query, page: page + 1, perPage: PER_PAGE } });
            if (n !== asked) return;
            page += 1;
            list.append(...res.items.map((item) => resultItem(item, () => {
                dialog.close();
                openMessage(item.message.room, item.message.id);
            })));
            more.hidden = !res.hasMore;
            status.textContent = list.childElementCount ? "" : "No messages found.";
        } catch (err) {
            if (n !== asked) return;
            status.textContent = errorText(err);
        }
    }

    input.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(() => ask(true), TYPING_PAUSE);
    });
    input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") {
            clearTimeout(timer);
            ask(true);
        }
    });
    more.addEventListener("click", () => ask(false));
    input.focus();
}

function resultItem({ message, room, highlight }, open) {
    const item = roomItem(room.id);
    const author = userById(message.user);
    const at = parseDate(message.created);
    return h("li",
        h("button.search-result", { type: "button", onclick: open },
            h("span.search-meta",
                h("strong", roomTitle(item?.room ?? room, item?.peer)),
                " · ", author ? displayName(author) : "",
                " · ", at ? `${dayLabel(at)} ${clockTime(at)}` : ""),
            snippet(highlight)));
}

/**
 * The server's highlight as elements: text and <mark> only. It escapes
 * everything but the marks; this keeps nothing else even if it did not.
 */
function snippet(html) {
    const template = document.createElement("template");
    template.innerHTML = html; // inert: nothing in a template loads or runs
    const out = h("span.search-snippet");
    for (const node of template.content.childNodes) {
        if (node.nodeName === "MARK") out.append(h("mark", node.textContent));
        else out.append(node.textContent);
    }
    return out;
}

/**
 * Opens the room and scrolls to the message, loading older pages until it
 * is on the page (the room view loads them from its "Load older" button).
 */
async function openMessage(roomId, messageId) {
    location.hash = `#/room/${roomId}`;
    const selector = `.timeline article.msg[data-id="${CSS.escape(messageId)}"]`;
    for (let tries = 0; tries < 200; tries++) {
        const el = document.querySelector(selector);
        if (el) {
            el.scrollIntoView({ block: "center" });
            el.classList.add("search-hit");
            el.focus({ preventScroll: true });
            setTimeout(() => el.classList.remove("search-hit"), 2500);
            return;
        }
        const older = document.querySelector(".timeline-top button.link");
        if (older && tries % 5 === 4) older.click();
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
}
