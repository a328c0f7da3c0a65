// Starts a real pbchat server for the browser test: builds the Go app (or
// takes PBCHAT_BIN), serves an EMPTY data dir — no demo data, users sign up
// through the page — on a free loopback port, with the built web client
// (pb_public/ at the repo root) as --publicDir. Stops and cleans up after.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const publicDir = path.join(repoRoot, "pb_public");

// The toolchain go.mod pins: GOTOOLCHAIN makes an older `go` fetch it.
function goToolchain() {
    const goMod = fs.readFileSync(path.join(repoRoot, "go.mod"), "utf8");
    return goMod.match(/^toolchain\s+(go\S+)/m)?.[1] ?? "go1.27.3";
}

function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function startServer() {
    if (!fs.existsSync(path.join(publicDir, "index.html"))) {
        throw new Error(`${publicDir}/index.html is missing: build the web client first (make web)`);
    }
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pbchat-e2e-web-"));
    const dataDir = path.join(tmp, "pb_data");
    const logFile = path.join(tmp, "server.log");
    const env = { ...process.env, GOTOOLCHAIN: goToolchain() };

    let bin = process.env.PBCHAT_BIN;
    if (!bin) {
        bin = path.join(tmp, "pbchat");
        execFileSync("go", ["build", "-o", bin, "."], { cwd: repoRoot, env, stdio: ["ignore", "inherit", "inherit"] });
    }

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const log = fs.openSync(logFile, "a");
    const child = spawn(bin, ["serve", "--http", `127.0.0.1:${port}`, "--dir", dataDir, "--publicDir", publicDir], {
        cwd: tmp, env, stdio: ["ignore", log, log],
    });
    let exited = null;
    child.on("exit", (code, signal) => (exited = { code, signal }));

    const stop = async () => {
        if (exited === null) {
            child.kill("SIGTERM");
            const deadline = Date.now() + 5000;
            while (exited === null && Date.now() < deadline) await sleep(50);
            if (exited === null) child.kill("SIGKILL");
        }
        fs.closeSync(log);
        fs.rmSync(tmp, { recursive: true, force: true });
    };
    process.once("exit", () => exited === null && child.kill("SIGKILL"));

    const deadline = Date.now() + 30_000;
    for (;;) {
        if (exited !== null) {
            const out = fs.readFileSync(logFile, "utf8");
            await stop();
            throw new Error(`pbchat serve exited (${JSON.stringify(exited)}):\n${out}`);
        }
        try {
            const res = await fetch(url + "/api/health");
            if (res.ok) break;
        } catch {
            // not listening yet
        }
        if (Date.now() > deadline) {
            const out = fs.readFileSync(logFile, "utf8");
            await stop();
            throw new Error(`pbchat serve did not answer /api/health within 30 s:\n${out}`);
        }
        await sleep(100);
    }
    // The page must come from pb_public, not a 404.
    const index = await fetch(url + "/");
    if (!index.ok || !(await index.text()).includes("js/main.js")) {
        await stop();
        throw new Error(`GET / did not serve pb_public/index.html (status ${index.status}): does \`pbchat serve\` take --publicDir?`);
    }
    return { url, stop, logFile };
}
