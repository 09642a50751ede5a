// instance_messaging.test.mjs - the proof issue 5 asks for: a real Baileys client (pinned in
// package.json) linked to `wagate sandbox` as another account exchanges text both ways with a
// wagate instance (`wagate serve`, linked to the same sandbox), 1:1 and in a group: Baileys
// decrypts what wagate encrypted and wagate decrypts what Baileys encrypted.
// Usage: node instance_messaging.test.mjs   (WAGATE_BIN, SANDBOX_LOG=1, BAILEYS_LOG=debug as
// link.test). Last line: "instance_messaging: N passed, N failed".
//
// Set-up as in messaging.test.mjs / link.test.mjs (sandbox root key for Baileys' certificate
// check, strict Curve.verify, QR link through the control API, the 515 restart) and
// tests/integration/test_messaging.py (serve with WAGATE_WA_URL / WAGATE_WA_ROOT_KEY, instance
// linked by a phone scan, WORKING: its prekeys are uploaded by then).
// Phone A's companion: the wagate instance. Phone B's companion: Baileys.
//   1:1 out   POST /v1/instances/{id}/messages to B: Baileys decrypts it (messages.upsert)
//   1:1 in    Baileys sendMessage to A: a message.received event (GET .../events) has the text
//   group     POST /groups {creator B, participants [A]}: wagate sends to it, Baileys decrypts;
//             Baileys sends to it, wagate has a message.received event with isGroup
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WA_CERT_DETAILS } from 'baileys/lib/Defaults/index.js';
import { WAGATE, check, sleep, withTimeout, waitFor, textOf, installStrictVerify, running, connect,
    runSuite } from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-imsg-'));
const ADMIN = 'wga_interop_instance_admin_key_0123456789';

installStrictVerify(); // Baileys' default Curve.verify accepts anything (INTEROP.md)

// ---------------------------------------------------------------- processes we start
function startProc(args, env, cwd) {
    const proc = spawn(WAGATE, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd });
    running.add(proc);
    const p = { proc, out: '', err: '' };
    p.exited = new Promise((r) => proc.on('exit', (code, sig) => { running.delete(proc); r({ code, sig }); }));
    proc.stdout.on('data', (d) => { p.out += d; });
    proc.stderr.on('data', (d) => {
        p.err += d;
        if (process.env.SANDBOX_LOG)
            process.stderr.write(d);
    });
    return p;
}
async function stopProc(p) {
    if (!p || !running.has(p.proc))
        return p ? p.exited : null;
    p.proc.kill('SIGTERM');
    return withTimeout(p.exited, 15000, 'process exit').catch((e) => e);
}
async function http(base, method, p, body, token) {
    const headers = {};
    if (body)
        headers['content-type'] = 'application/json';
    if (token)
        headers.authorization = `Bearer ${token}`;
    const res = await fetch(base + p, { method, headers, body: body ? JSON.stringify(body) : undefined });
    let json = null;
    try { json = await res.json(); } catch { /* empty */ }
    return { status: res.status, body: json };
}
const freePort = () => new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

// every message Baileys emits, so a message that comes before we wait for it is not lost
function collect(sock) {
    const seen = [];
    sock.ev.on('messages.upsert', ({ messages }) => { for (const m of messages) seen.push(m); });
    return seen;
}

async function main() {
    if (!process.env.WAGATE_BIN)
        execFileSync('make', ['-s', '--no-print-directory', 'build/wagate'], { cwd: path.join(here, '..', '..'), stdio: 'inherit' });
    // ---- the sandbox
    const sb = startProc(['sandbox', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0',
        '--state', path.join(tmp, 'sandbox.db'), '--root-key-out', path.join(tmp, 'root.hex')],
    { WAGATE_LOG_LEVEL: 'info' }, tmp);
    await waitFor(() => (/control http:\/\/\S+/.test(sb.out) && /websocket ws:\/\/\S+/.test(sb.out)) ||
        !running.has(sb.proc), 10000, 'sandbox start');
    const wsUrl = sb.out.match(/websocket (ws:\/\/\S+)/)[1];
    const ctl = sb.out.match(/control (http:\/\/\S+)/)[1];
    const rootHex = sb.out.match(/root key ([0-9a-f]{64})/)[1];
    WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(rootHex, 'hex');
    const sapi = (method, p, body) => http(ctl, method, p, body);
    const A = '15550004444', B = '15550005555';
    const jA = `${A}@s.whatsapp.net`, jB = `${B}@s.whatsapp.net`;
    for (const [n, name] of [[A, 'Gate'], [B, 'Bay']])
        await sapi('POST', '/phones', { number: n, pushName: name });

    // ---- wagate serve, its instance linked to phone A
    const port = await freePort();
    const gw = startProc(['serve'], {
        WAGATE_LISTEN: `127.0.0.1:${port}`, WAGATE_DB: path.join(tmp, 'wagate.db'), WAGATE_LOG_LEVEL: 'info',
        WAGATE_ADMIN_KEY: ADMIN, WAGATE_WA_URL: wsUrl, WAGATE_WA_ROOT_KEY: rootHex,
        WAGATE_RATE_CREATE: '0', WAGATE_RATE_WRITE: '0', WAGATE_RATE_READ: '0',
        WAGATE_WA_BACKOFF_MAX_MS: '1000', WAGATE_WA_PREKEYS_INITIAL: '50', WAGATE_WORKERS: '2',
    }, tmp);
    const gbase = `http://127.0.0.1:${port}`;
    const gapi = (method, p, body) => http(gbase, method, p, body, ADMIN);
    await waitFor(async () => {
        if (!running.has(gw.proc))
            throw new Error(`wagate serve exited: ${gw.err.slice(-2000)}`);
        return (await gapi('GET', '/health').catch(() => null))?.status === 200;
    }, 10000, 'wagate health');
    let r = await gapi('POST', '/v1/instances', { name: 'interop' });
    check('POST /v1/instances -> 201 with a QR code', r.status === 201 && !!r.body?.data?.qrCode?.code, JSON.stringify(r));
    const iid = r.body.data.id;
    r = await sapi('POST', `/phones/${A}/scan`, { qr: r.body.data.qrCode.code });
    check('phone A scans the instance\'s QR', r.status === 200 && !!r.body?.deviceJid, JSON.stringify(r));
    // WORKING comes only once the prekeys are uploaded: peers can build sessions from then on
    const working = await waitFor(async () => (await gapi('GET', `/v1/instances/${iid}`)).body?.data?.status === 'WORKING',
        30000, 'WORKING').catch((e) => e);
    check('the instance is WORKING (its prekeys uploaded)', working === true, String(working));

    // ---- Baileys linked to phone B
    const dirB = path.join(tmp, 'authB');
    const first = await withTimeout(connect({ wsUrl }, dirB, { onQr: (qr) => sapi('POST', `/phones/${B}/scan`, { qr }) }),
        40000, 'pairing socket');
    let seen = null;
    const second = first.close === 515
        ? await withTimeout(connect({ wsUrl }, dirB, { onSocket: (s) => { seen = collect(s); } }), 40000, 'login socket') : null;
    check('Baileys linked to phone B and open', !!second?.open, JSON.stringify({ close: first.close }));
    const sock = second.open;
    await sleep(1500); // prekey upload after login

    const baileysGot = (text, ms) => waitFor(() => seen.find((m) => textOf(m) === text) || null, ms, `Baileys: ${text}`);
    const received = async () => ((await gapi('GET', `/v1/instances/${iid}/events?limit=1000`)).body?.data || [])
        .filter((e) => e.event === 'message.received').map((e) => e.data);
    const wagateGot = (text, ms) => waitFor(async () => (await received()).find((d) => d?.message?.text === text) || null,
        ms, `wagate: ${text}`);

    // ---- 1:1, wagate -> Baileys
    r = await gapi('POST', `/v1/instances/${iid}/messages`, { to: B, text: 'hello Baileys, from wagate' });
    check('POST /v1/instances/{id}/messages to B -> 200 sent', r.status === 200 && r.body?.data?.status === 'sent',
        JSON.stringify(r));
    const outId = r.body?.data?.messageId;
    let m = await baileysGot('hello Baileys, from wagate', 30000).catch((e) => e);
    check('Baileys decrypts the text wagate encrypted (1:1)', textOf(m) === 'hello Baileys, from wagate' &&
        m.key.fromMe === false && m.key.id === outId, JSON.stringify(m?.key || String(m)));

    // ---- 1:1, Baileys -> wagate
    const sent = await sock.sendMessage(jA, { text: 'hello wagate, from Baileys' });
    let d = await wagateGot('hello wagate, from Baileys', 30000).catch((e) => e);
    check('wagate decrypts the text Baileys encrypted (message.received)', d?.message?.text === 'hello wagate, from Baileys' &&
        d.id === sent.key.id && d.isGroup === false && d.fromMe === false && String(d.from).split('@')[0].split(':')[0] === B,
    JSON.stringify(d?.message ? d : String(d)));
    // and a second exchange each way, now on established sessions (msg, not pkmsg)
    r = await gapi('POST', `/v1/instances/${iid}/messages`, { to: jB, text: 'second from wagate' });
    m = await baileysGot('second from wagate', 30000).catch((e) => e);
    check('Baileys decrypts a second wagate text', r.status === 200 && textOf(m) === 'second from wagate', JSON.stringify(m?.key || String(m)));
    await sock.sendMessage(jA, { text: 'second from Baileys' });
    d = await wagateGot('second from Baileys', 30000).catch((e) => e);
    check('wagate decrypts a second Baileys text', d?.message?.text === 'second from Baileys', String(d?.message ? '' : d));

    // ---- group
    r = await sapi('POST', '/groups', { subject: 'Interop group', creator: B, participants: [A] });
    check('POST /groups -> 201 {jid}', r.status === 201 && /^\d+@g\.us$/.test(r.body?.jid || ''), JSON.stringify(r));
    const G = r.body.jid;
    r = await gapi('POST', `/v1/instances/${iid}/messages`, { to: G, text: 'group hello from wagate' });
    check('wagate sends to the group -> 200', r.status === 200, JSON.stringify(r));
    m = await baileysGot('group hello from wagate', 30000).catch((e) => e);
    check('Baileys decrypts wagate\'s group message (skmsg)', textOf(m) === 'group hello from wagate' &&
        m.key.remoteJid === G && m.key.fromMe === false, JSON.stringify(m?.key || String(m)));
    await sock.sendMessage(G, { text: 'group hello from Baileys' });
    d = await wagateGot('group hello from Baileys', 30000).catch((e) => e);
    check('wagate decrypts Baileys\' group message (message.received, isGroup)', d?.message?.text === 'group hello from Baileys' &&
        d.isGroup === true && d.chat === G, JSON.stringify(d?.message ? d : String(d)));

    // ---- stop what we started
    const closed = new Promise((resolve) => sock.ev.on('connection.update', (u) => { if (u.connection === 'close') resolve(); }));
    sock.end(undefined);
    await withTimeout(closed, 5000, 'Baileys close').catch(() => {});
    const gst = await stopProc(gw);
    check('wagate serve stops cleanly', gst?.code === 0, JSON.stringify(gst) + ' ' + gw.err.slice(-1500));
    const sst = await stopProc(sb);
    check('sandbox stops cleanly', sst?.code === 0, JSON.stringify(sst));
}

await runSuite('instance_messaging', tmp, main);
