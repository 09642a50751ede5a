// common.mjs - what the Baileys-against-sandbox suites share: the check counter and summary,
// timeouts, the strict signature check INTEROP.md asks for, the `wagate sandbox` process and
// the Baileys socket driver. Each suite is its own process, so the counters here are per suite.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import curveJs from 'curve25519-js';
import makeWASocket, { useMultiFileAuthState, Browsers } from 'baileys';
import { WA_CERT_DETAILS } from 'baileys/lib/Defaults/index.js';
import { Curve } from 'baileys/lib/Utils/crypto.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const WAGATE = process.env.WAGATE_BIN || path.join(here, '..', '..', 'build', 'wagate');
export const logger = pino({ level: process.env.BAILEYS_LOG || 'silent' });

// ---------------------------------------------------------------- checks and summary
let passed = 0;
let failed = 0;
export const check = (name, ok, detail = '') => {
    if (ok) {
        passed++;
        console.log(`ok   ${name}`);
    } else {
        failed++;
        console.log(`FAIL ${name}${detail ? ': ' + detail : ''}`);
    }
};
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const withTimeout = (p, ms, what) =>
    Promise.race([p, sleep(ms).then(() => { throw new Error(`timeout after ${ms} ms: ${what}`); })]);
export async function waitFor(fn, ms, what) {
    const end = Date.now() + ms;
    for (;;) {
        const v = await fn();
        if (v)
            return v;
        if (Date.now() > end)
            throw new Error(`timeout after ${ms} ms: ${what}`);
        await sleep(100);
    }
}

export const running = new Set(); // child processes, killed on the way out whatever happened

// Runs main(), counts an exception as a failure, kills what is still running, removes tmp and
// prints "<name>: N passed, N failed" (the line tests/interop/run.sh sums); exits non-zero on
// any failure.
export async function runSuite(name, tmp, main) {
    try {
        await main();
    } catch (e) {
        failed++;
        console.log(`FAIL unexpected: ${e?.stack || e}`);
    }
    for (const p of running)
        p.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
    console.log(`${name}: ${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
}

// ---------------------------------------------------------------- strict signatures
// Baileys' own Curve.verify returns true for any well-formed signature (INTEROP.md); replace
// it with a real check. Returns the lenient original so a suite can show the difference.
export function installStrictVerify() {
    const lenient = Curve.verify;
    Curve.verify = (pub, msg, sig) => {
        try {
            return curveJs.verify(Buffer.from(pub), Buffer.from(msg), Buffer.from(sig));
        } catch {
            return false;
        }
    };
    return lenient;
}

// ---------------------------------------------------------------- the sandbox
export class Sandbox {
    constructor(state, tmp) {
        this.state = state;
        this.keyFile = path.join(tmp, 'root.hex');
        this.listen = '127.0.0.1:0';
        this.control = '127.0.0.1:0';
    }
    async start() {
        const args = ['sandbox', '--listen', this.listen, '--control', this.control,
            '--state', this.state, '--root-key-out', this.keyFile];
        this.proc = spawn(WAGATE, args, { stdio: ['ignore', 'pipe', 'pipe'],
            env: { ...process.env, WAGATE_LOG_LEVEL: process.env.SANDBOX_LOG ? 'debug' : 'info' } });
        const proc = this.proc;
        running.add(proc);
        this.exited = new Promise((r) => proc.on('exit', (code, sig) => { running.delete(proc); r({ code, sig }); }));
        if (process.env.SANDBOX_LOG)
            this.proc.stderr.on('data', (d) => process.stderr.write(d));
        else
            this.proc.stderr.on('data', () => {});
        let out = '';
        await withTimeout(new Promise((resolve, reject) => {
            this.proc.stdout.on('data', (d) => {
                out += d;
                if (/control http:\/\/\S+/.test(out) && /websocket ws:\/\/\S+/.test(out))
                    resolve();
            });
            this.proc.on('exit', (c) => reject(new Error(`sandbox exited ${c}: ${out}`)));
        }), 10000, 'sandbox start');
        this.wsUrl = out.match(/websocket (ws:\/\/\S+)/)[1];
        this.ctlUrl = out.match(/control (http:\/\/\S+)/)[1];
        this.rootHex = out.match(/root key ([0-9a-f]{64})/)[1];
        // keep the same ports across restarts
        this.listen = this.wsUrl.replace(/^ws:\/\//, '').replace(/\/ws\/chat$/, '');
        this.control = this.ctlUrl.replace(/^http:\/\//, '');
        WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(this.rootHex, 'hex');
        return this;
    }
    async stop(signal = 'SIGTERM') {
        if (!this.proc)
            return null;
        this.proc.kill(signal);
        const r = await this.exited;
        this.proc = null;
        return r;
    }
    async api(method, p, body) {
        const res = await fetch(this.ctlUrl + p, {
            method, headers: body ? { 'content-type': 'application/json' } : {},
            body: body ? JSON.stringify(body) : undefined,
        });
        let json = null;
        try { json = await res.json(); } catch { /* empty */ }
        return { status: res.status, body: json };
    }
}

// ---------------------------------------------------------------- Baileys driver
// One socket to server.wsUrl; resolves with {open: sock, creds} on connection 'open' or
// {close: statusCode, sock, creds}.
export async function connect(server, dir, { onQr, onSocket } = {}) {
    const { state, saveCreds } = await useMultiFileAuthState(dir);
    const sock = makeWASocket({
        auth: state, waWebSocketUrl: server.wsUrl, logger, browser: Browsers.ubuntu('Chrome'),
        markOnlineOnConnect: false, syncFullHistory: false, connectTimeoutMs: 15000,
        defaultQueryTimeoutMs: 15000, qrTimeout: 30000,
    });
    sock.ev.on('creds.update', saveCreds);
    if (onSocket)
        onSocket(sock);
    let qrSeen = false;
    return new Promise((resolve) => {
        sock.ev.on('connection.update', (u) => {
            if (u.qr && onQr && !qrSeen) {
                qrSeen = true;
                onQr(u.qr, sock);
            }
            if (u.connection === 'open')
                resolve({ open: sock, creds: state.creds });
            if (u.connection === 'close')
                resolve({ close: u.lastDisconnect?.error?.output?.statusCode, sock, creds: state.creds });
        });
    });
}

// Pairs (first socket) then logs in (second socket), as an application handles the 515.
export async function pairThenLogin(server, dir, onQr, loginOpts = {}) {
    const first = await withTimeout(connect(server, dir, { onQr }), 40000, 'pairing socket');
    const second = first.close === 515
        ? await withTimeout(connect(server, dir, loginOpts), 40000, 'login socket') : null;
    return { first, second };
}

export const textOf = (m) => m?.message?.conversation || m?.message?.extendedTextMessage?.text || null;
