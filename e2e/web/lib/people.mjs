// What the browser tests share: waiting for a condition, signing a person up
// in a fresh browser context, and calling the API as that person.
import assert from "node:assert/strict";

/** Polls fn until it returns a truthy value; fails with what it last saw. */
export async function eventually(fn, what, timeout = 10_000) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
        try {
            last = await fn();
            if (last) return last;
        } catch (err) {
            last = err.message;
        }
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

/**
 * Signs a new person up through the web client, in a context of its own.
 * onPage sets up listeners before the first navigation.
 */
export async function signUp(browser, url, name, email, { viewport = { width: 1200, height: 760 }, onPage } = {}) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    onPage?.(page);
    await page.goto(url);
    await page.getByRole("button", { name: "Create an account" }).click();
    await page.getByLabel("Name").fill(name);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("correct horse battery");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.locator(".me-name", { hasText: name }).waitFor();
    const auth = await page.evaluate(() => JSON.parse(localStorage.getItem("pocketbase_auth")));
    return { context, page, name, token: auth.token, id: auth.record.id };
}

/** One request as person (JSON or FormData body): { status, body }. */
export async function call(url, person, method, urlPath, body) {
    const form = body instanceof FormData;
    const res = await fetch(url + urlPath, {
        method,
        headers: { Authorization: person.token, ...(body && !form ? { "Content-Type": "application/json" } : {}) },
        body: body ? (form ? body : JSON.stringify(body)) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** call that fails the test unless it succeeds; the answer's body. */
export async function api(url, person, method, urlPath, body) {
    const res = await call(url, person, method, urlPath, body);
    if (res.status >= 300) assert.fail(`${method} ${urlPath}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
}
