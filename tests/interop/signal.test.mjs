// signal.test.mjs - Baileys' Signal repository (lib/Signal/libsignal.js: libsignal-node sessions
// and Baileys' own sender-key code, the code Evolution API and WAHA run) against wagate's
// wa/signal.c (signal_bridge.c over a pipe). Usage: node signal.test.mjs.
// Prints one line per failure and last "signal: N passed, N failed". Checks:
//   b2w     Baileys injects wagate's bundle (as parsed from a key-fetch reply), sends pkmsg;
//           wagate decrypts, answers msg; several messages both ways, including out of order
//   w2b     wagate builds a session from Baileys' bundle, sends pkmsg; Baileys decrypts and
//           answers; both ways again
//   noprekey the same without a one-time prekey
//   group   Baileys' SKDM + skmsg decrypted by wagate; wagate's SKDM + skmsg decrypted by
//           Baileys; several iterations, out of order (at wagate), skipping one (at Baileys)
//   tamper  flipped bytes are refused on both sides (wagate answers an error, never a crash)
//   stanza  the whole paths: wagate's <message> (wa/msg text + padding, wa/signal, wa/stanza,
//           binary codec) decoded and decrypted by Baileys' decodeBinaryNode/decryptMessageNode,
//           DM (with a quote) and group (SKDM pairwise + skmsg in one stanza); and Baileys'
//           encodeWAMessage + encrypt + encodeBinaryNode received by wagate the same ways
import { execSync, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { initAuthCreds, Curve, proto, encodeWAMessage, encodeBinaryNode, decodeBinaryNode,
    decryptMessageNode, jidNormalizedUser } from 'baileys';
import { makeLibSignalRepository } from 'baileys/lib/Signal/libsignal.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bridgePath = `${root}/build/interop/signal_bridge`;
const PKGS = 'libevent libevent_openssl libevent_pthreads openssl jansson libprotobuf-c ' +
    'libsignal-protocol-c libqrencode libpng libcurl sqlite3 zlib libsodium';
execSync(`mkdir -p build/interop && cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Isrc ` +
    `-Ibuild/gen $(pkg-config --cflags ${PKGS}) -o ${bridgePath} tests/interop/signal_bridge.c ` +
    `build/libwagate.a $(pkg-config --libs ${PKGS}) -lwslay -lpthread -lm`, { cwd: root, stdio: 'inherit' });

let passed = 0, failed = 0;
const check = (name, cond, info = '') => {
    if (cond) passed++;
    else { failed++; console.log(`FAIL ${name} ${info}`); }
};
const logger = pino({ level: 'silent' });
// libsignal-node reports every failed decrypt on the console; the tamper checks expect those
const quiet = async (fn) => {
    const e = console.error, w = console.warn;
    console.error = console.warn = () => {};
    try { return await fn(); } finally { console.error = e; console.warn = w; }
};
const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => (s === '-' ? undefined : Buffer.from(s, 'hex'));

// A Baileys party: fresh creds, in-memory key store, its repository, 4 one-time prekeys.
function baileys() {
    const creds = initAuthCreds();
    const mem = {};
    const keys = {
        get: async (type, ids) => {
            const o = {};
            for (const id of ids) if (mem[type]?.[id] != null) o[id] = mem[type][id];
            return o;
        },
        set: async (data) => {
            for (const t of Object.keys(data)) {
                mem[t] ??= {};
                for (const [id, v] of Object.entries(data[t])) {
                    if (v == null) delete mem[t][id];
                    else mem[t][id] = v;
                }
            }
        },
        transaction: async (fn) => fn(),
        isInTransaction: () => false,
    };
    const prekeys = {};
    for (let i = 1; i <= 4; i++) prekeys[i] = Curve.generateKeyPair();
    mem['pre-key'] = { ...prekeys };
    const repo = makeLibSignalRepository({ creds, keys }, logger);
    return { creds, repo, prekeys, mem };
}

// The wagate bridge: one command line, one reply line.
function bridge() {
    const child = spawn(bridgePath, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '', waiters = [];
    child.stdout.on('data', (d) => { buf += d; const w = waiters; waiters = []; w.forEach((f) => f()); });
    const line = async () => {
        for (let i = 0; i < 100; i++) {
            const k = buf.indexOf('\n');
            if (k >= 0) { const l = buf.slice(0, k); buf = buf.slice(k + 1); return l; }
            await new Promise((r) => { waiters.push(r); setTimeout(r, 100); });
        }
        throw new Error('bridge: no reply');
    };
    const cmd = async (...args) => {
        child.stdin.write(args.join(' ') + '\n');
        const l = await line();
        const parts = l.split(' ');
        if (parts[0] !== 'OK') throw new Error(`bridge: ${l}`);
        return parts.slice(1);
    };
    return { child, line, cmd, close: () => child.stdin.end() };
}

// wagate's bundle as Baileys' parseAndInjectE2ESessions would give it to injectE2ESession.
async function wagateBundleForBaileys(w, prekeyId) {
    const [reg, ik, spkId, spk, sig, pkId, pk] = await w.cmd('BUNDLE', prekeyId);
    const sigPub = (k) => Buffer.concat([Buffer.from([5]), unhex(k)]);
    return {
        registrationId: Number(reg),
        identityKey: sigPub(ik),
        signedPreKey: { keyId: Number(spkId), publicKey: sigPub(spk), signature: unhex(sig) },
        preKey: pk === '-' ? undefined : { keyId: Number(pkId), publicKey: sigPub(pk) },
    };
}

const W_JID = '5511000000001:3@s.whatsapp.net'; // wagate's device, as Baileys addresses it
const B_JID = '5511000000002@s.whatsapp.net';   // Baileys' device, as wagate addresses it
const GROUP = '120363000000000042@g.us';

async function b2w(withPrekey) {
    const tag = withPrekey ? 'b2w' : 'noprekey-b2w';
    const w = bridge();
    await w.line(); // READY
    const b = baileys();
    try {
        await b.repo.injectE2ESession({ jid: W_JID, session: await wagateBundleForBaileys(w, withPrekey ? 2 : 0) });
        // pkmsg until wagate answers
        for (let i = 0; i < 2; i++) {
            const text = Buffer.from(`hello wagate ${i}`);
            const { type, ciphertext } = await b.repo.encryptMessage({ jid: W_JID, data: text });
            check(`${tag} type`, type === 'pkmsg', type);
            const [pt] = await w.cmd('DEC', B_JID, type, hex(ciphertext));
            check(`${tag} decrypt`, pt === hex(text), pt);
        }
        // wagate answers with msg; Baileys decrypts
        for (let i = 0; i < 3; i++) {
            const text = Buffer.from(`hello baileys ${i}`);
            const [type, ct] = await w.cmd('ENC', B_JID, hex(text));
            check(`${tag} reply type`, type === 'msg', type);
            const pt = await b.repo.decryptMessage({ jid: W_JID, type, ciphertext: unhex(ct) });
            check(`${tag} reply`, Buffer.from(pt).equals(text));
        }
        // now Baileys sends msg, out of order at wagate
        const cts = [];
        for (let i = 0; i < 4; i++) cts.push(await b.repo.encryptMessage({ jid: W_JID, data: Buffer.from(`m${i}`) }));
        check(`${tag} msg after reply`, cts.every((c) => c.type === 'msg'), cts.map((c) => c.type).join());
        for (const i of [3, 1, 0, 2]) {
            const [pt] = await w.cmd('DEC', B_JID, cts[i].type, hex(cts[i].ciphertext));
            check(`${tag} out of order ${i}`, pt === hex(Buffer.from(`m${i}`)), pt);
        }
        // tampered Baileys message: wagate refuses it cleanly and the session survives
        const t = await b.repo.encryptMessage({ jid: W_JID, data: Buffer.from('tamper') });
        const bad = Buffer.from(t.ciphertext);
        bad[bad.length - 3] ^= 0x20;
        w.child.stdin.write(`DEC ${B_JID} ${t.type} ${hex(bad)}\n`);
        const l = await w.line();
        check(`${tag} tamper refused`, l.startsWith('ERR '), l);
        const [pt] = await w.cmd('DEC', B_JID, t.type, hex(t.ciphertext));
        check(`${tag} after tamper`, pt === hex(Buffer.from('tamper')), pt);
    } catch (e) {
        check(`${tag} exception`, false, e.stack);
    }
    w.close();
}

async function w2b(withPrekey) {
    const tag = withPrekey ? 'w2b' : 'noprekey-w2b';
    const w = bridge();
    await w.line();
    const b = baileys();
    try {
        const { creds } = b;
        const pk = b.prekeys[3];
        await w.cmd('PROCESS', B_JID, creds.registrationId, hex(creds.signedIdentityKey.public),
            creds.signedPreKey.keyId, hex(creds.signedPreKey.keyPair.public), hex(creds.signedPreKey.signature),
            withPrekey ? 3 : 0, withPrekey ? hex(pk.public) : '-');
        const [type, ct] = await w.cmd('ENC', B_JID, hex(Buffer.from('hi from wagate')));
        check(`${tag} type`, type === 'pkmsg', type);
        const pt = await b.repo.decryptMessage({ jid: W_JID, type, ciphertext: unhex(ct) });
        check(`${tag} decrypt`, Buffer.from(pt).toString() === 'hi from wagate');
        if (withPrekey) check(`${tag} prekey consumed`, b.mem['pre-key'][3] === undefined);
        for (let i = 0; i < 3; i++) {
            const r = await b.repo.encryptMessage({ jid: W_JID, data: Buffer.from(`back ${i}`) });
            check(`${tag} answer type`, r.type === 'msg', r.type);
            const [p2] = await w.cmd('DEC', B_JID, r.type, hex(r.ciphertext));
            check(`${tag} answer`, p2 === hex(Buffer.from(`back ${i}`)), p2);
            const [t2, c2] = await w.cmd('ENC', B_JID, hex(Buffer.from(`more ${i}`)));
            check(`${tag} msg type`, t2 === 'msg', t2);
            const p3 = await b.repo.decryptMessage({ jid: W_JID, type: t2, ciphertext: unhex(c2) });
            check(`${tag} more`, Buffer.from(p3).toString() === `more ${i}`);
        }
        // a tampered wagate message is refused by Baileys
        const [t3, c3] = await w.cmd('ENC', B_JID, hex(Buffer.from('x')));
        const bad = unhex(c3);
        bad[5] ^= 0x01;
        let threw = false;
        try { await quiet(() => b.repo.decryptMessage({ jid: W_JID, type: t3, ciphertext: bad })); } catch { threw = true; }
        check(`${tag} tamper refused by Baileys`, threw);
    } catch (e) {
        check(`${tag} exception`, false, e.stack);
    }
    w.close();
}

async function group() {
    const w = bridge();
    await w.line();
    const b = baileys();
    try {
        // Baileys -> wagate: the SKDM travels inside a pairwise message in real life; here its
        // bytes go straight to wagate (what wa/msg.c extracts from Message.senderKeyDistributionMessage)
        const msgs = [];
        let skdm;
        for (let i = 0; i < 4; i++) {
            const r = await b.repo.encryptGroupMessage({ group: GROUP, meId: B_JID, data: Buffer.from(`grp ${i}`) });
            if (i === 0) skdm = r.senderKeyDistributionMessage; // sent with the first message
            msgs.push(r.ciphertext);
        }
        await w.cmd('GPROC', GROUP, B_JID, hex(skdm));
        for (const i of [0, 2, 1, 3]) {
            const [pt] = await w.cmd('GDEC', GROUP, B_JID, hex(msgs[i]));
            check(`group b2w ${i}`, pt === hex(Buffer.from(`grp ${i}`)), pt);
        }
        w.child.stdin.write(`GDEC ${GROUP} ${B_JID} ${hex(msgs[1])}\n`);
        let l = await w.line();
        check('group b2w duplicate refused', l.startsWith('ERR '), l);
        const bad = Buffer.from(msgs[3]);
        bad[bad.length - 1] ^= 1; // signature
        w.child.stdin.write(`GDEC ${GROUP} ${B_JID} ${hex(bad)}\n`);
        l = await w.line();
        check('group b2w tamper refused', l.startsWith('ERR '), l);

        // wagate -> Baileys
        const [wskdm] = await w.cmd('GSKDM', GROUP, W_JID);
        await b.repo.processSenderKeyDistributionMessage({
            item: { groupId: GROUP, axolotlSenderKeyDistributionMessage: unhex(wskdm) },
            authorJid: W_JID,
        });
        const cts = [];
        for (let i = 0; i < 4; i++) cts.push((await w.cmd('GENC', GROUP, W_JID, hex(Buffer.from(`wg ${i}`))))[0]);
        // in order, then one skipped (2 never arrives). Not back in time: Baileys' own store
        // JSON-serializes sender-key records and cannot use a skipped message key it revives
        // from JSON ("Expected Buffer instead of: Object"), whoever the sender is.
        for (const i of [0, 1, 3]) {
            const pt = await b.repo.decryptGroupMessage({ group: GROUP, authorJid: W_JID, msg: unhex(cts[i]) });
            check(`group w2b ${i}`, Buffer.from(pt).toString() === `wg ${i}`);
        }
        const wbad = unhex(cts[0]);
        wbad[4] ^= 0x08;
        let threw = false;
        try { await quiet(() => b.repo.decryptGroupMessage({ group: GROUP, authorJid: W_JID, msg: wbad })); } catch { threw = true; }
        check('group w2b tamper refused by Baileys', threw);
        // garbage never crashes the bridge
        for (const g of ['33', '3301', hex(randomBytes(80))]) {
            w.child.stdin.write(`GDEC ${GROUP} ${B_JID} ${g}\n`);
            l = await w.line();
            check('group garbage', l.startsWith('ERR '), l);
            w.child.stdin.write(`DEC ${B_JID} pkmsg ${g}\n`);
            l = await w.line();
            check('pkmsg garbage', l.startsWith('ERR '), l);
        }
    } catch (e) {
        check('group exception', false, e.stack);
    }
    w.close();
}

async function stanzas() {
    const w = bridge();
    await w.line();
    const b = baileys();
    const B_LID = '100000000002@lid';
    try {
        const { creds } = b;
        await w.cmd('PROCESS', B_JID, creds.registrationId, hex(creds.signedIdentityKey.public),
            creds.signedPreKey.keyId, hex(creds.signedPreKey.keyPair.public), hex(creds.signedPreKey.signature),
            1, hex(b.prekeys[1].public));
        // wagate -> Baileys, DM with a quote
        const [out, dl] = await w.cmd('SENDTEXT', B_JID, W_JID, hex(Buffer.from('olá, Baileys')), '3EB0QUOTED');
        const outNode = await decodeBinaryNode(unhex(out));
        const parts = outNode.content.find((c) => c.tag === 'participants');
        check('stanza out shape', outNode.tag === 'message' && outNode.attrs.to === B_JID &&
            parts?.content?.[0]?.attrs?.jid === B_JID && parts.content[0].content[0].attrs.type === 'pkmsg' &&
            outNode.content.some((c) => c.tag === 'device-identity'), JSON.stringify(outNode.attrs));
        const node = await decodeBinaryNode(unhex(dl));
        const dec = decryptMessageNode(node, B_JID, B_LID, b.repo, logger);
        await dec.decrypt();
        const m = dec.fullMessage.message;
        check('stanza w2b text', m?.extendedTextMessage?.text === 'olá, Baileys', JSON.stringify(m));
        check('stanza w2b quote', m?.extendedTextMessage?.contextInfo?.stanzaId === '3EB0QUOTED');
        // Baileys keeps the sender's device in remoteJid here and normalizes later
        check('stanza w2b chat', jidNormalizedUser(dec.fullMessage.key.remoteJid) === '5511000000001@s.whatsapp.net',
            dec.fullMessage.key.remoteJid);

        // Baileys -> wagate, DM (Baileys pads 1..16 and encodes with protobufjs)
        const send = async (jid, message) => {
            const { type, ciphertext } = await b.repo.encryptMessage({ jid, data: encodeWAMessage(message) });
            return { tag: 'enc', attrs: { v: '2', type }, content: ciphertext };
        };
        for (let i = 0; i < 3; i++) {
            const enc = await send(W_JID, proto.Message.fromObject({
                extendedTextMessage: { text: `reply ${i}`, contextInfo: { stanzaId: '3EB0BRIDGE0000000000AB', participant: W_JID } },
            }));
            const bin = encodeBinaryNode({ tag: 'message', attrs: { id: `B${i}`, from: B_JID, t: '1700000001', type: 'text', notify: 'B' }, content: [enc] });
            const [chat, author, kind, text, quoted] = await w.cmd('RECV', hex(bin));
            check(`stanza b2w ${i}`, chat === B_JID && author === B_JID && kind === 'text' &&
                text === hex(Buffer.from(`reply ${i}`)) && quoted === '3EB0BRIDGE0000000000AB',
            `${chat} ${author} ${kind} ${text} ${quoted}`);
        }

        // Baileys -> wagate, group: SKDM pairwise + skmsg in one stanza (§4.2)
        const g = await b.repo.encryptGroupMessage({ group: GROUP, meId: B_JID, data: encodeWAMessage({ conversation: 'group hello' }) });
        const skdmEnc = await send(W_JID, { senderKeyDistributionMessage: { groupId: GROUP, axolotlSenderKeyDistributionMessage: g.senderKeyDistributionMessage } });
        const gbin = encodeBinaryNode({ tag: 'message', attrs: { id: 'G1', from: GROUP, participant: B_JID, t: '1700000002', type: 'text' },
            content: [skdmEnc, { tag: 'enc', attrs: { v: '2', type: 'skmsg' }, content: g.ciphertext }] });
        let r = await w.cmd('RECV', hex(gbin));
        check('stanza group b2w', r[0] === GROUP && r[1] === B_JID && r[3] === hex(Buffer.from('group hello')), r.join(' '));
        const g2 = await b.repo.encryptGroupMessage({ group: GROUP, meId: B_JID, data: encodeWAMessage({ conversation: 'second' }) });
        r = await w.cmd('RECV', hex(encodeBinaryNode({ tag: 'message', attrs: { id: 'G2', from: GROUP, participant: B_JID, t: '1700000003', type: 'text' },
            content: [{ tag: 'enc', attrs: { v: '2', type: 'skmsg' }, content: g2.ciphertext }] })));
        check('stanza group b2w skmsg only', r[3] === hex(Buffer.from('second')), r.join(' '));

        // wagate -> Baileys, group
        for (let i = 0; i < 2; i++) {
            const [, gdl] = await w.cmd('SENDGROUP', GROUP, W_JID, B_JID, hex(Buffer.from(`from wagate ${i}`)));
            const gn = await decodeBinaryNode(unhex(gdl));
            const gd = decryptMessageNode(gn, B_JID, B_LID, b.repo, logger);
            await gd.decrypt();
            check(`stanza group w2b ${i}`, gd.fullMessage.message?.conversation === `from wagate ${i}` &&
                gd.fullMessage.key.remoteJid === GROUP && gd.fullMessage.key.participant === W_JID,
            JSON.stringify(gd.fullMessage.message) + ' ' + JSON.stringify(gd.fullMessage.key));
        }
    } catch (e) {
        check('stanza exception', false, e.stack);
    }
    w.close();
}

await b2w(true);
await w2b(true);
await b2w(false);
await w2b(false);
await group();
await stanzas();
console.log(`signal: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
