// A picture to send: a PNG (sunset gradient, a sun, two hills) made here,
// so the test needs no fixture file.
import zlib from "node:zlib";

const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
});
function crc32(buf) {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
}

export function landscapePNG(width = 640, height = 400) {
    const rows = [];
    const mix = (a, b, t) => Math.round(a + (b - a) * t);
    for (let y = 0; y < height; y++) {
        const row = Buffer.alloc(1 + width * 3);
        const t = y / height;
        for (let x = 0; x < width; x++) {
            // sky: indigo at the top to warm orange at the horizon
            let rgb = [mix(79, 251, t), mix(70, 146, t), mix(229, 60, t)];
            const dx = x - width * 0.68, dy = y - height * 0.55;
            if (dx * dx + dy * dy < (height * 0.16) ** 2) rgb = [254, 240, 138]; // the sun
            const hill1 = height * 0.72 + Math.sin(x / 70) * 18;
            const hill2 = height * 0.84 + Math.cos(x / 45) * 12;
            if (y > hill1) rgb = [49, 46, 129];
            if (y > hill2) rgb = [30, 27, 75];
            row.set(rgb, 1 + x * 3);
        }
        rows.push(row);
    }
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // truecolour RGB
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        chunk("IHDR", ihdr),
        chunk("IDAT", zlib.deflateSync(Buffer.concat(rows))),
        chunk("IEND", Buffer.alloc(0)),
    ]);
}
