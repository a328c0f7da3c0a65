// Starts real pbchat servers for the Node suites (e2e/js, e2e/web): builds the
// Go app (or takes PBCHAT_BIN), serves a temporary data dir on free loopback
// ports, waits for /api/health, and stops and cleans up after.
//
//   const server = await startServer({ demo: true });                 // one process
//   const server = await startServer({ demo: true, topology: "cluster" }); // writer + 2 realtime nodes over NATS
//   server.url        the writer (REST and, in one process, realtime)
//   server.nodes      the realtime nodes' URLs (cluster), else []
//   server.restart()  stops the process and starts it again on the same data dir and port (one process)
//   server.stop()     stops everything and removes the data dir
//
// The cluster is e2e/cmd/pbchatcluster: an embedded NATS server, the writer
// (`pbchat serve` with PBCHAT_NATS_URL) and two `pbchat realtime` nodes.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

// e2e/lib → the repo root is two directories up.
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const publicDir = path.join(repoRoot, "pb_public");

const HEALTH_TIMEOUT = 60_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The toolchain go.mod pins (PocketBase needs a newer Go than some machines
// have): GOTOOLCHAIN makes `go` fetch it, whatever the caller's environment says.
function goEnv() {
    const goMod = fs.readFileSync(path.join(repoRoot, "go.mod"), "utf8");
    return { ...process.env, GOTOOLCHAIN: goMod.match(/^toolchain\s+(go\S+)/m)?.[1] ?? "go1.27.3" };
}

function goBuild(out, pkg) {
    execFileSync("go", ["build", "-o", out, pkg], { cwd: repoRoot, env: goEnv(), stdio: ["ignore", "inherit", "inherit"] });
    return out;
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

// Never leave a process behind, even when the runner is interrupted.
const running = new Set();
process.once("exit", () => running.forEach((child) => child.kill("SIGKILL")));

/** A child process whose output goes to logFile; `exited` is set once it ends. */
function launch(bin, args, { cwd, logFile, env = goEnv(), stdout = "log" }) {
    const log = fs.openSync(logFile, "a");
    const child = spawn(bin, args, { cwd, env, stdio: ["ignore", stdout === "pipe" ? "pipe" : log, log] });
    fs.closeSync(log); // the child holds its own copy
    const proc = { child, exited: null };
    running.add(child);
    const done = new Promise((resolve) => child.on("exit", (code, signal) => {
        proc.exited = { code, signal };
        running.delete(child);
        resolve();
    }));
    proc.stop = async () => {
        if (proc.exited) return;
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await done;
        clearTimeout(timer);
    };
    return proc;
}

async function waitHealthy(url, proc, what, logFile) {
    const deadline = Date.now() + HEALTH_TIMEOUT;
    for (;;) {
        if (proc.exited) {
            throw new Error(`${what} exited (${JSON.stringify(proc.exited)}):\n${fs.readFileSync(logFile, "utf8")}`);
        }
        try {
            const res = await fetch(url + "/api/health");
            if (res.ok) return;
        } catch {
            // not listening yet
        }
        if (Date.now() > deadline) {
            await proc.stop();
            throw new Error(`${what} did not answer ${url}/api/health within ${HEALTH_TIMEOUT / 1000} s:\n${fs.readFileSync(logFile, "utf8")}`);
        }
        await sleep(100);
    }
}

/**
 * Builds the app, prepares a temporary data dir (`chat demo` fills it when
 * demo is set; otherwise it starts empty) and serves it.
 * publicDir: the web client to serve (the built pb_public/), if any.
 * topology: "single" (one `pbchat serve`) or "cluster" (e2e/cmd/pbchatcluster).
 */
export async function startServer({ demo = false, publicDir: webDir = null, topology = "single" } = {}) {
    if (!["single", "cluster"].includes(topology)) throw new Error(`unknown topology ${JSON.stringify(topology)}`);
    if (webDir && !fs.existsSync(path.join(webDir, "index.html"))) {
        throw new Error(`${webDir}/index.html is missing: build the web client first (make web)`);
    }
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pbchat-e2e-"));
    const dataDir = path.join(tmp, "pb_data");
    const logFile = path.join(tmp, "server.log");
    const bin = process.env.PBCHAT_BIN ? path.resolve(process.env.PBCHAT_BIN) : goBuild(path.join(tmp, "pbchat"), ".");
    if (demo) execFileSync(bin, ["chat", "demo", "--dir", dataDir], { cwd: tmp, env: goEnv(), stdio: ["ignore", "ignore", "inherit"] });
    const publicArgs = webDir ? ["--publicDir", webDir] : [];

    const server = { url: "", nodes: [], dataDir, logFile, topology };
    let proc = null;

    if (topology === "single") {
        const port = await freePort();
        server.url = `http://127.0.0.1:${port}`;
        server.start = async () => {
            proc = launch(bin, ["serve", "--http", `127.0.0.1:${port}`, "--dir", dataDir, ...publicArgs], { cwd: tmp, logFile });
            await waitHealthy(server.url, proc, "pbchat serve", logFile);
        };
        server.kill = async () => proc?.stop();
        /** Stops the server; runs during() while it is down; starts it again on the same data dir and port. */
        server.restart = async (during = async () => {}) => {
            await server.kill();
            await during();
            await server.start();
        };
    } else {
        const cluster = goBuild(path.join(tmp, "pbchatcluster"), "./e2e/cmd/pbchatcluster");
        server.start = async () => {
            proc = launch(cluster, ["-bin", bin, "-dir", dataDir, "-nodes", "2", ...(webDir ? ["-publicDir", webDir] : [])],
                { cwd: tmp, logFile, stdout: "pipe" });
            const info = await firstLine(proc, logFile);
            server.url = info.writer;
            server.nodes = info.nodes;
            server.nats = info.nats;
        };
        server.kill = async () => proc?.stop();
        server.restart = () => {
            throw new Error("restart() is for the one-process topology");
        };
    }

    server.stop = async () => {
        await proc?.stop();
        fs.rmSync(tmp, { recursive: true, force: true });
    };

    try {
        await server.start();
        if (webDir) {
            // The page must come from the web client, not a 404.
            const index = await fetch(server.url + "/");
            if (!index.ok || !(await index.text()).includes("js/main.js")) {
                throw new Error(`GET / did not serve ${webDir}/index.html (status ${index.status}): does \`pbchat serve\` take --publicDir?`);
            }
        }
    } catch (err) {
        await server.stop();
        throw err;
    }
    return server;
}

// firstLine reads pbchatcluster's JSON line (the addresses); the rest of its stdout goes to the log.
async function firstLine(proc, logFile) {
    const lines = readline.createInterface({ input: proc.child.stdout });
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(null), HEALTH_TIMEOUT * 2)));
    const exited = new Promise((resolve) => proc.child.once("exit", () => resolve(null)));
    const first = new Promise((resolve) => lines.once("line", resolve));
    const line = await Promise.race([first, exited, timeout]);
    clearTimeout(timer);
    lines.on("line", (l) => fs.appendFileSync(logFile, l + "\n"));
    if (line === null) {
        await proc.stop();
        throw new Error(`pbchatcluster did not start (${JSON.stringify(proc.exited)}):\n${fs.readFileSync(logFile, "utf8")}`);
    }
    return JSON.parse(line);
}
