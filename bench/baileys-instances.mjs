// baileys-instances.mjs - `bench/baileys-instances N [ws|wss]`: N Baileys clients (the version
// pinned in tests/interop/package.json) linked to `wagate sandbox` from ONE Node process, as
// one would host them, and the RSS per linked client (issue 8), to compare with bench/instances.
//
//   1. start the sandbox (wss: with the certificate bench/baileys-instances made, trusted
//      through NODE_EXTRA_CA_CERTS) and create N phones;
//   2. baseline: RSS of this process after loading Baileys, before any socket (after a GC);
//   3. link: CONCURRENCY (default 16) clients at a time make a socket with an in-memory auth
//      state, the QR is scanned through POST /phones/{n}/scan, and after the 515 a second socket
//      logs in with the saved credentials (as tests/interop/common.mjs pairThenLogin does)
//      until 'open';
//   4. wait until the process is quiet (the first prekey upload, 812 keys, follows 'open'),
//      RSS; then IDLE_SECONDS idle (keepalives only): CPU time and RSS again (after a GC).
//
// Per client = (RSS - baseline) / N, RSS = VmRSS of /proc/self/status, as bench/instances reads
// the gateway's. Auth state (creds and Signal keys, prekeys included) is kept in memory: the
// Baileys figure includes it, wagate keeps its keys in SQLite.
// Prints a Markdown table and a "RESULT baileys ..." line that bench/compare reads.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(here);
const interop = path.join(repo, 'tests', 'interop');
const WAGATE = process.env.WAGATE_BIN || path.join(repo, 'build', 'wagate');
const N = Number(process.argv[2]);
const MODE = process.argv[3] || 'ws';
const IDLE_SECONDS = Number(process.env.IDLE_SECONDS || 60);
const CONCURRENCY = Number(process.env.CONCURRENCY || 16);
if (!Number.isInteger(N) || N < 1 || !['ws', 'wss'].includes(MODE)) {
    console.error('usage: bench/baileys-instances N [ws|wss]');
    process.exit(2);
}
if (MODE === 'wss' && !(process.env.BENCH_TLS_CERT && process.env.NODE_EXTRA_CA_CERTS)) {
    console.error('wss: run through bench/baileys-instances (it makes and trusts the certificate)');
    process.exit(2);
}

const log = (s) => console.log(s);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// a GC before each RSS reading, so garbage not yet collected is not counted as used
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
const status = () => {
    const o = {};
    for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
        const m = line.match(/^(VmRSS|VmHWM|Threads):\s+(\d+)/);
        if (m)
            o[m[1]] = Number(m[2]);
    }
    return o;
};
const cpuSeconds = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
};
const freePort = () => new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
    });
});

// ---------------------------------------------------------------- Baileys, from tests/interop
const req = createRequire(path.join(interop, 'package.json'));
const pino = req('pino');
const B = await import(pathToFileURL(path.join(interop, 'node_modules', 'baileys', 'lib', 'index.js')));
const makeWASocket = B.makeWASocket || B.default;
const logger = pino({ level: process.env.BAILEYS_LOG || 'silent' });

// creds and Signal keys in memory (useMultiFileAuthState's shape, without the files)
function memoryAuthState() {
    const creds = B.initAuthCreds();
    const store = {};
    return {
        creds,
        keys: {
            get: async (type, ids) => {
                const m = store[type] || {};
                const out = {};
                for (const id of ids) {
                    let v = m[id];
                    if (v !== undefined && type === 'app-state-sync-key' && v)
                        v = B.proto.Message.AppStateSyncKeyData.fromObject(v);
                    out[id] = v;
                }
                return out;
            },
            set: async (data) => {
                for (const type in data) {
                    store[type] ||= {};
                    for (const id in data[type]) {
                        if (data[type][id])
                            store[type][id] = data[type][id];
                        else
                            delete store[type][id];
                    }
                }
            },
        },
    };
}

// ---------------------------------------------------------------- the sandbox
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-bench-baileys-'));
let sandbox = null;
async function startSandbox() {
    const wsPort = await freePort();
    const ctlPort = await freePort();
    const keyFile = path.join(tmp, 'root.hex');
    const args = ['sandbox', '--listen', `127.0.0.1:${wsPort}`, '--control', `127.0.0.1:${ctlPort}`,
        '--state', path.join(tmp, 'sandbox.db'), '--root-key-out', keyFile];
    if (MODE === 'wss')
        args.push('--tls-cert', process.env.BENCH_TLS_CERT, '--tls-key', process.env.BENCH_TLS_KEY);
    sandbox = spawn(WAGATE, args, { stdio: ['ignore', 'ignore', 'ignore'], cwd: tmp,
        env: { ...process.env, WAGATE_LOG_LEVEL: 'warn' } });
    const ctl = `http://127.0.0.1:${ctlPort}`;
    for (let i = 0; ; i++) {
        try {
            if ((await fetch(ctl + '/health')).status === 200)
                break;
        } catch { /* not yet */ }
        if (i > 300)
            throw new Error('sandbox not healthy');
        await sleep(50);
    }
    const root = fs.readFileSync(keyFile, 'utf8').trim();
    B.WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(root, 'hex'); // trust the sandbox's root key
    return { ctl, url: `${MODE}://127.0.0.1:${wsPort}/ws/chat` };
}
async function api(sb, method, p, body) {
    const res = await fetch(sb.ctl + p, { method, headers: body ? { 'content-type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined });
    let json = null;
    try { json = await res.json(); } catch { /* empty */ }
    return { status: res.status, body: json };
}

// One socket; resolves 'open' or the close status code.
function socket(sb, auth, phone) {
    const sock = makeWASocket({
        auth, waWebSocketUrl: sb.url, logger, browser: B.Browsers.ubuntu('Chrome'),
        markOnlineOnConnect: false, syncFullHistory: false, connectTimeoutMs: 60000,
        defaultQueryTimeoutMs: 60000, qrTimeout: 60000,
    });
    let scanned = false;
    return new Promise((resolve) => {
        sock.ev.on('connection.update', (u) => {
            if (u.qr && !scanned) {
                scanned = true;
                api(sb, 'POST', `/phones/${phone}/scan`, { qr: u.qr }).then((r) => {
                    if (r.status !== 200)
                        resolve({ error: `scan ${r.status} ${JSON.stringify(r.body)}` });
                });
            }
            if (u.connection === 'open')
                resolve({ open: sock });
            if (u.connection === 'close')
                resolve({ close: u.lastDisconnect?.error?.output?.statusCode });
        });
    });
}

// Pairs, then logs in after the 515 with the saved credentials, as an app does; like an app it
// also reconnects after any other close but a logout (on a loaded machine a login can time out:
// 408), a few times.
async function link(sb, phone) {
    const auth = memoryAuthState();
    let last = '';
    for (let attempt = 0; attempt < 6; attempt++) {
        const r = await socket(sb, auth, phone);
        if (r.open)
            return r.open;
        if (r.error)
            throw new Error(r.error);
        if (r.close === 401 || r.close === 403)
            break;
        last = `closed ${r.close}`;
        if (r.close !== 515)
            retries++;
    }
    throw new Error(`${phone}: no open socket (${last})`);
}
let retries = 0;

async function main() {
    log(`bench/baileys-instances: N=${N} ${MODE}, ${os.cpus().length} cores, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, ` +
        `node ${process.version}, baileys ${req('baileys/package.json').version}, idle ${IDLE_SECONDS} s`);
    const sb = await startSandbox();
    const phones = Array.from({ length: N }, (_, i) => String(5519100000000 + i));
    for (let i = 0; i < N; i += 50)
        await Promise.all(phones.slice(i, i + 50).map(async (n) => {
            const r = await api(sb, 'POST', '/phones', { number: n, pushName: 'Bench' });
            if (r.status !== 201)
                throw new Error(`POST /phones ${r.status}`);
        }));
    gc();
    await sleep(500);
    gc();
    const base = status();
    log(`${MODE}: baseline (Baileys loaded, no socket) RSS ${base.VmRSS} KiB, heap used ${(process.memoryUsage().heapUsed / 1024) | 0} KiB`);

    const t0 = Date.now();
    const socks = new Array(N);
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, N) }, async () => {
        while (next < N) {
            const i = next++;
            socks[i] = await link(sb, phones[i]);
        }
    }));
    const linkS = (Date.now() - t0) / 1000;
    log(`${MODE}: ${N} clients linked and open in ${linkS.toFixed(1)} s (${retries} reconnects after a close other than the 515)`);
    // quiet: the prekey upload after 'open' done, less than 10 % of a core for 2 s running
    let quiet = 0;
    while (quiet < 2) {
        const c = cpuSeconds();
        await sleep(1000);
        quiet = cpuSeconds() - c < 0.1 ? quiet + 1 : 0;
        if (Date.now() - t0 > 600000 + N * 1000)
            throw new Error('did not settle');
    }
    const settledS = (Date.now() - t0) / 1000;
    gc();
    const linked = status();
    log(`${MODE}: settled ${settledS.toFixed(1)} s after the first socket; RSS ${linked.VmRSS} KiB (peak ${linked.VmHWM}), ` +
        `heap used ${(process.memoryUsage().heapUsed / 1024) | 0} KiB, ${linked.Threads} threads`);
    const c0 = cpuSeconds();
    const ti = Date.now();
    await sleep(IDLE_SECONDS * 1000);
    const idleS = (Date.now() - ti) / 1000;
    const cpu = 100 * (cpuSeconds() - c0) / idleS;
    gc();
    const idle = status();
    const openNow = socks.filter((s) => s.ws?.isOpen).length;
    log(`${MODE}: idle ${idleS.toFixed(0)} s: CPU ${cpu.toFixed(2)} % of a core, RSS ${idle.VmRSS} KiB (peak ${idle.VmHWM}), ` +
        `heap used ${(process.memoryUsage().heapUsed / 1024) | 0} KiB, ${openNow} of ${N} sockets open`);
    const r = {
        mode: MODE, n: N, base_kib: base.VmRSS, linked_kib: linked.VmRSS, idle_kib: idle.VmRSS,
        hwm_kib: idle.VmHWM, link_s: linkS, settled_s: settledS, idle_cpu_pct: cpu,
        per_linked_kib: (linked.VmRSS - base.VmRSS) / N, per_idle_kib: (idle.VmRSS - base.VmRSS) / N,
        open: openNow,
    };
    log('');
    log('| mode | N | node RSS: baseline / linked / idle (MiB) | peak (MiB) | per client: linked / idle (KiB) | link (s) | idle CPU (% of a core) |');
    log('|---|---|---|---|---|---|---|');
    const mib = (k) => (k / 1024).toFixed(1);
    log(`| ${MODE} | ${N} | ${mib(r.base_kib)} / ${mib(r.linked_kib)} / ${mib(r.idle_kib)} | ${mib(r.hwm_kib)} | ` +
        `${r.per_linked_kib.toFixed(1)} / ${r.per_idle_kib.toFixed(1)} | ${linkS.toFixed(1)} | ${cpu.toFixed(2)} |`);
    log('RESULT baileys ' + Object.entries(r).map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(2) : v}`).join(' '));
    for (const s of socks)
        s.end(undefined);
    return openNow === N ? 0 : 1;
}

let rc = 1;
try {
    rc = await main();
} catch (e) {
    console.error(`bench/baileys-instances: ${e?.stack || e}`);
}
if (sandbox)
    sandbox.kill('SIGTERM');
await sleep(300);
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(rc);
