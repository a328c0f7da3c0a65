// Starts a real pbchat server for the suite: builds the Go app once, fills a
// temporary data dir with `chat demo`, serves it on a free loopback port and
// stops it again. Nothing here talks to the server except /api/health.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

// e2e/js/lib → the repo root is three directories up from this file (two from e2e/js).
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

// The toolchain go.mod pins (PocketBase needs a newer Go than some machines
// have): GOTOOLCHAIN makes `go` fetch it, whatever the caller's environment says.
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
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pbchat-e2e-js-"));
    const bin = path.join(tmp, "pbchat");
    const dataDir = path.join(tmp, "pb_data");
    const logFile = path.join(tmp, "server.log");
    const env = { ...process.env, GOTOOLCHAIN: goToolchain() };

    execFileSync("go", ["build", "-o", bin, "."], { cwd: repoRoot, env, stdio: ["ignore", "inherit", "inherit"] });
    execFileSync(bin, ["chat", "demo", "--dir", dataDir], { cwd: tmp, env, stdio: ["ignore", "ignore", "inherit"] });

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const log = fs.openSync(logFile, "a");
    const child = spawn(bin, ["serve", "--http", `127.0.0.1:${port}`, "--dir", dataDir], {
        cwd: tmp,
        env,
        stdio: ["ignore", log, log],
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
    // Never leave the server behind, even when the runner is interrupted.
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

    return { url, stop, logFile };
}
