// A picture to send: a PNG (sunset gradient, a sun, two hills) made here,
// so the test needs no fixture file.
import { encodePNG } from "../../lib/png.mjs";

export function landscapePNG(width = 640, height = 400) {
    const mix = (a, b, t) => Math.round(a + (b - a) * t);
    return encodePNG(width, height, (x, y) => {
        const t = y / height;
        // sky: indigo at the top to warm orange at the horizon
        let rgb = [mix(79, 251, t), mix(70, 146, t), mix(229, 60, t)];
        const dx = x - width * 0.68, dy = y - height * 0.55;
        if (dx * dx + dy * dy < (height * 0.16) ** 2) rgb = [254, 240, 138]; // the sun
        const hill1 = height * 0.72 + Math.sin(x / 70) * 18;
        const hill2 = height * 0.84 + Math.cos(x / 45) * 12;
        if (y > hill1) rgb = [49, 46, 129];
        if (y > hill2) rgb = [30, 27, 75];
        return rgb;
    });
}
