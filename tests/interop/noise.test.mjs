// noise.test.mjs - Baileys' Noise initiator (lib/Utils/noise-handler.js, the code Evolution API
// and WAHA run against WhatsApp) against wagate's responder (noise_bridge.c over a pipe).
// Usage: node noise.test.mjs. Prints one line per failure and last "noise: N passed, N failed".
//
// Baileys' own Curve.verify accepts any well-formed signature (INTEROP.md), so it is replaced
// with curve25519-js's strict verify first: Baileys then really checks our certificate chain
// (root -> intermediate -> leaf signatures, intermediate issuerSerial 0). Checks:
//   ok        handshake, ClientPayload and client static key as seen by wagate, then transport
//             frames both ways (small, empty, 100 KB), over 8 sessions with fresh keys
//   realroot  with WhatsApp's real root key Baileys refuses our sandbox chain
//   routing   Baileys' "ED" routing-info prefix is parsed and reported by wagate
//   tamper    a flipped byte in Baileys' ClientFinish payload makes wagate fail with a crypto error
import { execSync, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as B from 'baileys';
import pino from 'pino';
import { verify as strictVerify } from 'curve25519-js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bridge = `${root}/build/interop/noise_bridge`;
const PKGS = 'libevent libevent_openssl libevent_pthreads openssl jansson libprotobuf-c ' +
    'libsignal-protocol-c libqrencode libpng libcurl sqlite3 zlib libsodium';
execSync(`mkdir -p build/interop && cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Isrc ` +
    `-Ibuild/gen $(pkg-config --cflags ${PKGS}) -o ${bridge} tests/interop/noise_bridge.c ` +
    `build/libwagate.a $(pkg-config --libs ${PKGS}) -lwslay -lpthread -lm`, { cwd: root, stdio: 'inherit' });

B.Curve.verify = (pub, msg, sig) => strictVerify(pub, msg, sig);
const WA_ROOT = Buffer.from(B.WA_CERT_DETAILS.PUBLIC_KEY);

let passed = 0, failed = 0;
const check = (name, cond, info = '') => {
    if (cond) passed++;
    else { failed++; console.log(`FAIL ${name} ${info}`); }
};

// One connection: Baileys client <-> bridge. Returns what happened.
async function session({ realRoot = false, routingInfo, tamperFinish = false, frames = [] } = {}) {
    const child = spawn(bridge, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = Buffer.alloc(0), err = '', waiters = [], closed = false;
    const wake = () => { const w = waiters; waiters = []; w.forEach((f) => f()); };
    child.stdout.on('data', (d) => { buf = Buffer.concat([buf, d]); wake(); });
    child.stderr.on('data', (d) => { err += d; wake(); });
    const exited = new Promise((r) => child.on('close', (code) => { closed = true; wake(); r(code); }));
    child.stdin.on('error', () => {});
    const more = () => new Promise((r) => { waiters.push(r); setTimeout(r, 2000); });
    const line = async () => {
        for (let i = 0; i < 50; i++) {
            const k = buf.indexOf(10);
            if (k >= 0) { const l = buf.subarray(0, k).toString(); buf = buf.subarray(k + 1); return l; }
            if (closed) break;
            await more();
        }
        throw new Error('no root line');
    };
    const frame = async () => {
        for (let i = 0; i < 50; i++) {
            if (buf.length >= 3) {
                const n = (buf[0] << 16) | (buf[1] << 8) | buf[2];
                if (buf.length >= 3 + n) { const f = buf.subarray(3, 3 + n); buf = buf.subarray(3 + n); return f; }
            }
            if (closed) break;
            await more();
        }
        throw new Error('no frame');
    };
    const res = { rejected: null, first: null, echoes: [], hs: null, err: '', code: null };
    try {
        const rootHex = await line();
        B.WA_CERT_DETAILS.PUBLIC_KEY = realRoot ? WA_ROOT : Buffer.from(rootHex, 'hex');
        const eph = B.Curve.generateKeyPair(), noiseKey = B.Curve.generateKeyPair();
        res.noisePub = Buffer.from(noiseKey.public).toString('hex');
        const noise = B.makeNoiseHandler({
            keyPair: eph, NOISE_HEADER: B.NOISE_WA_HEADER, logger: pino({ level: 'silent' }), routingInfo,
        });
        child.stdin.write(noise.encodeFrame(
            B.proto.HandshakeMessage.encode({ clientHello: { ephemeral: eph.public } }).finish()));
        const hello = B.proto.HandshakeMessage.decode(await frame());
        let keyEnc;
        try { keyEnc = noise.processHandshake(hello, noiseKey); }
        catch (e) { res.rejected = e.message; return res; }
        res.payload = Buffer.from(`client payload ${Math.random()}`);
        const payloadEnc = Buffer.from(noise.encrypt(res.payload));
        if (tamperFinish) payloadEnc[payloadEnc.length - 5] ^= 0x10;
        child.stdin.write(noise.encodeFrame(B.proto.HandshakeMessage.encode(
            { clientFinish: { static: keyEnc, payload: payloadEnc } }).finish()));
        await noise.finishInit();
        if (tamperFinish) return res;
        res.first = Buffer.from(noise.decrypt(await frame())).toString();
        for (const f of frames) child.stdin.write(noise.encodeFrame(f));
        for (let i = 0; i < frames.length; i++) res.echoes.push(Buffer.from(noise.decrypt(await frame())));
    } catch (e) {
        res.error = e.message;
    } finally {
        child.stdin.end();
        res.code = await exited;
        res.err = err;
        const hs = err.split('\n').find((l) => l.startsWith('HS '));
        if (hs) { const [, p, s, r] = hs.split(' '); res.hs = { payload: p, peer: s, routing: r }; }
    }
    return res;
}

const big = Buffer.alloc(100000, 0);
for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
const frames = [Buffer.from('ping from baileys'), Buffer.alloc(0), big];

for (let i = 0; i < 8; i++) {
    const r = await session({ frames });
    check('ok.accepted', r.rejected === null && !r.error, `${r.rejected || ''} ${r.error || ''} ${r.err}`);
    check('ok.payload', r.hs && r.payload && r.hs.payload === r.payload.toString('hex'), JSON.stringify(r.hs));
    check('ok.peer', r.hs && r.hs.peer === r.noisePub);
    check('ok.first', r.first === 'hello from wagate', r.first);
    check('ok.echo', r.echoes.length === 3 && frames.every((f, k) =>
        r.echoes[k] && Buffer.compare(r.echoes[k], Buffer.concat([Buffer.from('echo:'), f])) === 0));
    check('ok.exit', r.code === 0, `${r.code} ${r.err}`);
}

{
    const r = await session({ realRoot: true });
    check('realroot', r.rejected === 'noise intermediate certificate signature invalid', r.rejected);
}
{
    const ri = Buffer.from('0802100518b301', 'hex');
    const r = await session({ routingInfo: ri, frames: [Buffer.from('x')] });
    check('routing.accepted', r.rejected === null && !r.error, `${r.rejected} ${r.error} ${r.err}`);
    check('routing.seen', r.hs && r.hs.routing === ri.toString('hex'), JSON.stringify(r.hs));
    check('routing.echo', r.echoes.length === 1 && r.echoes[0].toString() === 'echo:x');
}
{
    const r = await session({ tamperFinish: true });
    check('tamper.exit', r.code === 1, `${r.code}`);
    check('tamper.err', /ERR cryptographic/.test(r.err), r.err);
    check('tamper.no_hs', r.hs === null);
}

console.log(`noise: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
