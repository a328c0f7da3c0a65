// A tiny PNG encoder and header reader, so the picture flow needs no image library.
import zlib from "node:zlib";

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
});

function crc32(buf) {
    let c = 0xffffffff;
    for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
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

// encodePNG returns an 8-bit RGB PNG of width×height; pixel(x, y) gives [r, g, b].
export function encodePNG(width, height, pixel) {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // colour type: RGB
    const raw = Buffer.alloc((width * 3 + 1) * height);
    for (let y = 0; y < height; y++) {
        const row = y * (width * 3 + 1); // each row starts with filter type 0
        for (let x = 0; x < width; x++) raw.set(pixel(x, y), row + 1 + x * 3);
    }
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        chunk("IHDR", ihdr),
        chunk("IDAT", zlib.deflateSync(raw)),
        chunk("IEND", Buffer.alloc(0)),
    ]);
}

// makePNG returns a PNG of width×height: four coloured quadrants.
export function makePNG(width, height) {
    return encodePNG(width, height, (x, y) => {
        const top = y < height / 2, left = x < width / 2;
        return top ? (left ? [220, 40, 40] : [40, 160, 60]) : left ? [40, 80, 220] : [240, 200, 40];
    });
}

// pngSize reads width and height from a PNG's IHDR (throws on anything else).
export function pngSize(bytes) {
    const buf = Buffer.from(bytes);
    if (buf.length < 24 || buf.readUInt32BE(0) !== 0x89504e47 || buf.toString("ascii", 12, 16) !== "IHDR") {
        throw new Error(`not a PNG (${buf.length} bytes)`);
    }
    return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}
