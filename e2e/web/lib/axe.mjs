// The accessibility check the browser tests share: axe-core (WCAG 2.1 A
// and AA) on the page as it is, in the light and the dark theme.
import assert from "node:assert/strict";
import AxeBuilder from "@axe-core/playwright";

/** Fails unless axe finds 0 serious or critical violations on page, light and dark. */
export async function axeClean(page, screen) {
    for (const scheme of ["light", "dark"]) {
        await page.emulateMedia({ colorScheme: scheme });
        await settled(page);
        const { violations } = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
        const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
        assert.deepEqual(bad.map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ") + " " + (n.failureSummary ?? "").split("\n")[1]).join(" | ")}`), [],
            `${screen} (${scheme})`);
    }
    await page.emulateMedia({ colorScheme: "light" });
}

/** Waits for the page's finite transitions (a theme switch fades backgrounds, not text). */
function settled(page) {
    return page.evaluate(() => Promise.all(document.getAnimations()
        .filter((a) => a.effect?.getComputedTiming().iterations !== Infinity)
        .map((a) => a.finished.catch(() => {}))));
}
