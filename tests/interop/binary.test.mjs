// binary.test.mjs - binary-node interop between wagate's C codec and Baileys (pinned in
// package.json). Usage: node binary.test.mjs <path to nodes_tool>. Prints one line per failure
// (at most 20 per check) and a last line "binary: N passed, N failed".
//
// Corpus: >= 2,000 nodes from a seeded generator: random trees plus realistic stanzas (iq,
// message with enc children, receipts, notifications, presence, ack, call, stream errors, every
// JID form). Four checks per node:
//   c2b   our bytes decode in Baileys to the same tree
//   same  Baileys' encoder gives the very same bytes as ours (where the format leaves no choice)
//   b2c   Baileys' bytes decode in ours to the same tree
//   rt    our decoder gives back exactly what we encoded (our own round trip, as a control)
//
// Legitimate divergences, handled here instead of hidden:
// - Baileys turns any string with '@' into a JID; our trees mark JIDs explicitly ({"jid": ...}).
//   The generator never puts '@' in a non-JID string.
// - Baileys cannot *encode* FB_JID ("u:d@msgr") or INTEROP_JID ("i-u:d@interop") (its jidDecode
//   turns them into AD_JIDs on s.whatsapp.net) and writes "u@hosted" as a JID_PAIR where we (as
//   whatsmeow) always use AD_JID for hosted servers: nodes holding those skip "same" and "b2c".
// - Baileys drops a raw agent on decode ("1_7:3@s.whatsapp.net" -> "1:3@s.whatsapp.net") and
//   both drop ":0" (an AD_JID with device 0 reads back as "u@server"): the expected trees are
//   normalised the same way.
// - Text content written raw reads back as bytes in both libraries (the wire cannot tell), so
//   content is compared as bytes, with JID-ness compared where the wire keeps it.
// - Integer-like attribute keys ("0", "45") would be reordered by JS objects, so the generator
//   does not use them as keys.
import { execFileSync } from 'node:child_process';
import { encodeBinaryNode, decodeBinaryNode } from 'baileys/lib/WABinary/index.js';
import { SINGLE_BYTE_TOKENS, DOUBLE_BYTE_TOKENS } from 'baileys/lib/WABinary/constants.js';

const tool = process.argv[2] || process.env.NODES_TOOL;
if (!tool) {
    console.error('usage: node binary.test.mjs <nodes_tool>');
    process.exit(2);
}

// ---------------------------------------------------------------- seeded generator
let seed = 0x2545f491;
const rnd = () => {
    seed ^= seed << 13; seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5; seed >>>= 0;
    return seed / 4294967296;
};
const ri = (n) => Math.floor(rnd() * n);
const pick = (a) => a[ri(a.length)];
const digits = (n) => Array.from({ length: n }, () => String(ri(10))).join('').replace(/^0/, '1');
const hexUp = (n) => Array.from({ length: n }, () => '0123456789ABCDEF'[ri(16)]).join('');
const bytes = (n) => Buffer.from(Array.from({ length: n }, () => ri(256)));
const tokens = [...SINGLE_BYTE_TOKENS.slice(1), ...DOUBLE_BYTE_TOKENS.flat()];
const isIntKey = (k) => /^(0|[1-9][0-9]*)$/.test(k);

const jidForms = [
    () => '@s.whatsapp.net',
    () => `${digits(11 + ri(3))}@s.whatsapp.net`,
    () => `${digits(12)}:${1 + ri(60)}@s.whatsapp.net`,
    () => `${digits(12)}:0@s.whatsapp.net`,
    () => `${digits(15)}@lid`,
    () => `${digits(15)}:${1 + ri(30)}@lid`,
    () => `${digits(12)}-${digits(10)}@g.us`,
    () => `120363${digits(12)}@g.us`,
    () => 'status@broadcast',
    () => `${digits(10)}@broadcast`,
    () => `120363${digits(12)}@newsletter`,
    () => `${digits(12)}:${ri(5)}@hosted`,
    () => `${digits(15)}:${1 + ri(5)}@hosted.lid`,
    () => `${digits(12)}_${pick([2, 7, 99, 200])}:${1 + ri(9)}@s.whatsapp.net`,
    () => `${digits(15)}:${ri(300)}@msgr`,
    () => `${1 + ri(9)}-${digits(12)}:${ri(40)}@interop`,
    () => `${digits(13)}@c.us`,
    () => 'server@c.us',
    () => `${digits(10)}@bot`,
];
const anyJid = () => pick(jidForms)();
const canBaileysEncode = (jid) => !/@(msgr|interop|hosted|hosted\.lid)$/.test(jid) || /:[1-9]\d*@hosted/.test(jid);

const randStr = () => {
    switch (ri(8)) {
    case 0: case 1: return pick(tokens);
    case 2: return Array.from({ length: ri(130) }, () => '0123456789-.'[ri(12)]).join('');
    case 3: return hexUp(ri(130));
    case 4: return '';
    case 5: return Array.from({ length: ri(300) }, () => 'abcxyzABC019 _-:/.,é€'[ri(21)]).join('');
    default: return Array.from({ length: 1 + ri(24) }, () => 'abcdefghijklmnopqrstuvwxyz-_'[ri(28)]).join('');
    }
};
const randKey = () => {
    for (;;) {
        const k = randStr();
        if (!isIntKey(k)) return k;
    }
};
const randTag = () => {
    for (;;) {
        const t = randStr();
        if (t) return t;
    }
};

const randomNode = (depth) => {
    const n = { tag: randTag(), attrs: {}, content: null };
    const na = ri(7);
    for (let i = 0; i < na; i++) n.attrs[randKey()] = ri(3) === 0 ? { jid: anyJid() } : randStr();
    const k = ri(8);
    if (k === 1) n.content = { bytes: bytes(pick([0, 1, 5, 32, 255, 256, 300, 1000, 70000])).toString('hex') };
    else if (k === 2) n.content = { text: randStr() };
    else if (k === 3) n.content = { jid: anyJid() };
    else if (k >= 4 && depth < 6) n.content = Array.from({ length: ri(5) }, () => randomNode(depth + 1));
    return n;
};

// Realistic stanzas (shapes from wa-protocol-core.md / wa-protocol-messaging.md).
const msgId = () => pick(['3EB0', 'BAE5', '']) + hexUp(16 + ri(6));
const ts = () => String(1700000000 + ri(50000000));
const enc = (type) => ({ tag: 'enc', attrs: { v: '2', type }, content: { bytes: bytes(40 + ri(400)).toString('hex') } });
const realistic = [
    () => ({ tag: 'iq', attrs: { id: msgId(), to: { jid: '@s.whatsapp.net' }, type: 'get', xmlns: 'w:p' }, content: [{ tag: 'ping', attrs: {}, content: null }] }),
    () => ({ tag: 'iq', attrs: { from: { jid: '@s.whatsapp.net' }, id: msgId(), type: 'result', t: ts() }, content: null }),
    () => ({ tag: 'iq', attrs: { id: msgId(), to: { jid: '@s.whatsapp.net' }, type: 'set', xmlns: 'encrypt' }, content: [
        { tag: 'registration', attrs: {}, content: { bytes: bytes(4).toString('hex') } },
        { tag: 'type', attrs: {}, content: { bytes: '05' } },
        { tag: 'identity', attrs: {}, content: { bytes: bytes(32).toString('hex') } },
        { tag: 'list', attrs: {}, content: Array.from({ length: 1 + ri(30) }, () => ({ tag: 'key', attrs: {}, content: [
            { tag: 'id', attrs: {}, content: { bytes: bytes(3).toString('hex') } },
            { tag: 'value', attrs: {}, content: { bytes: bytes(32).toString('hex') } }] })) },
        { tag: 'skey', attrs: {}, content: [
            { tag: 'id', attrs: {}, content: { bytes: bytes(3).toString('hex') } },
            { tag: 'value', attrs: {}, content: { bytes: bytes(32).toString('hex') } },
            { tag: 'signature', attrs: {}, content: { bytes: bytes(64).toString('hex') } }] }] }),
    () => ({ tag: 'iq', attrs: { id: msgId(), to: { jid: '@s.whatsapp.net' }, type: 'get', xmlns: 'usync' }, content: [
        { tag: 'usync', attrs: { sid: msgId(), mode: 'query', last: 'true', index: '0', context: 'message' }, content: [
            { tag: 'query', attrs: {}, content: [{ tag: 'devices', attrs: { version: '2' }, content: null }] },
            { tag: 'list', attrs: {}, content: Array.from({ length: 1 + ri(8) }, () => ({ tag: 'user', attrs: { jid: { jid: `${digits(12)}@s.whatsapp.net` } }, content: null })) }] }] }),
    () => ({ tag: 'iq', attrs: { from: { jid: '@s.whatsapp.net' }, id: msgId(), type: 'set', xmlns: 'md' }, content: [
        { tag: 'pair-device', attrs: {}, content: Array.from({ length: 6 }, () => ({ tag: 'ref', attrs: {}, content: { bytes: Buffer.from(hexUp(60)).toString('hex') } })) }] }),
    () => ({ tag: 'iq', attrs: { from: { jid: '@s.whatsapp.net' }, id: msgId(), type: 'set', xmlns: 'md' }, content: [
        { tag: 'pair-success', attrs: {}, content: [
            { tag: 'device-identity', attrs: {}, content: { bytes: bytes(180).toString('hex') } },
            { tag: 'platform', attrs: { name: pick(['Chrome', 'smbi', 'android']) }, content: null },
            { tag: 'device', attrs: { jid: { jid: `${digits(12)}:${1 + ri(20)}@s.whatsapp.net` }, lid: { jid: `${digits(15)}:${1 + ri(20)}@lid` } }, content: null },
            { tag: 'biz', attrs: { name: randStr().slice(0, 20) }, content: null }] }] }),
    () => ({ tag: 'message', attrs: { to: { jid: pick([jidForms[1], jidForms[4]])() }, id: msgId(), type: 'text' }, content: [enc(pick(['pkmsg', 'msg']))] }),
    () => ({ tag: 'message', attrs: { to: { jid: jidForms[6]() }, id: msgId(), type: pick(['text', 'media']), phash: '2:' + bytes(6).toString('base64') }, content: [
        { tag: 'participants', attrs: {}, content: Array.from({ length: 1 + ri(10) }, () => ({ tag: 'to', attrs: { jid: { jid: jidForms[2]() } }, content: [enc(pick(['pkmsg', 'msg']))] })) },
        enc('skmsg'),
        { tag: 'device-identity', attrs: {}, content: { bytes: bytes(150).toString('hex') } }] }),
    () => ({ tag: 'message', attrs: { from: { jid: jidForms[6]() }, participant: { jid: jidForms[5]() }, participant_pn: { jid: jidForms[2]() }, addressing_mode: 'lid', id: msgId(), t: ts(), notify: randStr().slice(0, 25), type: 'text', offline: '0' }, content: [enc('skmsg')] }),
    () => ({ tag: 'message', attrs: { from: { jid: jidForms[10]() }, id: msgId(), server_id: digits(3), t: ts(), type: 'text' }, content: [{ tag: 'plaintext', attrs: {}, content: { bytes: bytes(60).toString('hex') } }] }),
    () => ({ tag: 'receipt', attrs: { from: { jid: anyJid() }, id: msgId(), t: ts(), type: pick(['read', 'read-self', 'sender', 'inactive', 'played']) }, content: ri(2) ? [{ tag: 'list', attrs: {}, content: Array.from({ length: 1 + ri(6) }, () => ({ tag: 'item', attrs: { id: msgId() }, content: null })) }] : null }),
    () => ({ tag: 'receipt', attrs: { to: { jid: jidForms[1]() }, id: msgId(), type: 'retry' }, content: [
        { tag: 'retry', attrs: { count: '1', id: msgId(), t: ts(), v: '1' }, content: null },
        { tag: 'registration', attrs: {}, content: { bytes: bytes(4).toString('hex') } }] }),
    () => ({ tag: 'ack', attrs: { id: msgId(), to: { jid: anyJid() }, class: pick(['message', 'receipt', 'notification']), type: pick(['text', 'read', 'encrypt']) }, content: null }),
    () => ({ tag: 'notification', attrs: { from: { jid: jidForms[6]() }, id: digits(9), t: ts(), type: 'w:gp2', participant: { jid: jidForms[1]() } }, content: [
        { tag: pick(['add', 'remove', 'promote', 'demote']), attrs: { reason: 'invite' }, content: Array.from({ length: 1 + ri(5) }, () => ({ tag: 'participant', attrs: { jid: { jid: jidForms[1]() }, lid: { jid: jidForms[4]() } }, content: null })) }] }),
    () => ({ tag: 'notification', attrs: { from: { jid: '@s.whatsapp.net' }, id: digits(9), t: ts(), type: 'encrypt' }, content: [{ tag: 'count', attrs: { value: String(ri(50)) }, content: null }] }),
    () => ({ tag: 'notification', attrs: { from: { jid: jidForms[1]() }, id: digits(9), t: ts(), type: 'devices' }, content: [
        { tag: 'add', attrs: { device_hash: bytes(6).toString('base64') }, content: [{ tag: 'device', attrs: { jid: { jid: jidForms[2]() }, 'key-index': String(ri(20)) }, content: null }, { tag: 'key-index-list', attrs: { ts: ts() }, content: { bytes: bytes(100).toString('hex') } }] }] }),
    () => ({ tag: 'presence', attrs: { from: { jid: anyJid() }, type: pick(['available', 'unavailable']), last: ts() }, content: null }),
    () => ({ tag: 'chatstate', attrs: { from: { jid: anyJid() }, participant: { jid: jidForms[2]() } }, content: [{ tag: pick(['composing', 'paused']), attrs: ri(2) ? { media: 'audio' } : {}, content: null }] }),
    () => ({ tag: 'call', attrs: { from: { jid: jidForms[2]() }, id: msgId(), t: ts(), offline: '0' }, content: [
        { tag: 'offer', attrs: { 'call-id': hexUp(32), 'call-creator': { jid: jidForms[2]() } }, content: [
            { tag: 'audio', attrs: { enc: 'opus', rate: '16000' }, content: null },
            { tag: 'enc', attrs: { v: '2', type: 'pkmsg' }, content: { bytes: bytes(200).toString('hex') } }] }] }),
    () => ({ tag: 'success', attrs: { t: ts(), props: String(ri(30)), abprops: String(ri(30)), location: 'frc', lid: { jid: jidForms[4]() }, creation: ts() }, content: null }),
    () => ({ tag: 'stream:error', attrs: { code: pick(['515', '503', '401']) }, content: ri(2) ? [{ tag: 'conflict', attrs: { type: 'replaced' }, content: null }] : null }),
    () => ({ tag: 'ib', attrs: {}, content: [{ tag: pick(['offline', 'dirty', 'edge_routing']), attrs: { count: String(ri(100)) }, content: null }] }),
    () => ({ tag: 'xmlstreamend', attrs: {}, content: null }),
    () => ({ tag: 'iq', attrs: { id: msgId(), to: { jid: '@s.whatsapp.net' }, type: 'set', xmlns: 'w:g2' }, content: [
        { tag: 'create', attrs: { subject: randStr().slice(0, 40), key: msgId() }, content: Array.from({ length: 1 + ri(4) }, () => ({ tag: 'participant', attrs: { jid: { jid: jidForms[1]() } }, content: null })) }] }),
    () => ({ tag: 'message', attrs: { to: { jid: anyJid() }, id: msgId(), type: 'text' }, content: [{ tag: 'body', attrs: {}, content: { text: 'hello é€ <&>' } }] }),
];

const corpus = [];
for (let i = 0; i < 1100; i++) corpus.push(randomNode(0));
for (let i = 0; i < 1100; i++) corpus.push(pick(realistic)());
// JIDs as text content and every JID form as an attribute, deterministically.
for (const f of jidForms) corpus.push({ tag: 'jid', attrs: { jid: { jid: f() } }, content: { jid: f() } });

// ---------------------------------------------------------------- helpers
const jidsIn = (n, out = []) => {
    for (const v of Object.values(n.attrs)) if (typeof v === 'object') out.push(v.jid);
    if (n.content && !Array.isArray(n.content) && n.content.jid !== undefined) out.push(n.content.jid);
    if (Array.isArray(n.content)) n.content.forEach((c) => jidsIn(c, out));
    return out;
};
// The text a JID has after a trip through the wire (see the header comment).
const wireJid = (s, forBaileys) => {
    let t = s.replace(/:0@(s\.whatsapp\.net|lid|hosted|hosted\.lid)$/, '@$1');
    if (forBaileys) t = t.replace(/^(\d+)_\d+(:\d+)?@s\.whatsapp\.net$/, '$1$2@s.whatsapp.net');
    return t;
};
// Our JSON form -> what Baileys takes/gives (strings, Buffers, arrays).
const toBaileys = (n) => {
    const attrs = {};
    for (const [k, v] of Object.entries(n.attrs)) attrs[k] = typeof v === 'object' ? v.jid : v;
    let content;
    if (Array.isArray(n.content)) content = n.content.map(toBaileys);
    else if (n.content && n.content.bytes !== undefined) content = Buffer.from(n.content.bytes, 'hex');
    else if (n.content && n.content.text !== undefined) content = n.content.text;
    else if (n.content && n.content.jid !== undefined) content = n.content.jid;
    return { tag: n.tag, attrs, content };
};
// Canonical form for comparison: sorted attributes, content as bytes hex (+ jid flag).
const canonOurs = (n, forBaileys) => {
    const attrs = Object.entries(n.attrs)
        .map(([k, v]) => [k, typeof v === 'object' ? wireJid(v.jid, forBaileys) : v])
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let content = null;
    if (Array.isArray(n.content)) content = n.content.map((c) => canonOurs(c, forBaileys));
    else if (n.content && n.content.bytes !== undefined) content = 'b:' + n.content.bytes;
    else if (n.content && n.content.text !== undefined) content = 'b:' + Buffer.from(n.content.text).toString('hex');
    else if (n.content && n.content.jid !== undefined) content = 'b:' + Buffer.from(wireJid(n.content.jid, forBaileys)).toString('hex');
    return { tag: n.tag, attrs, content };
};
const canonBaileys = (n) => {
    const attrs = Object.entries(n.attrs).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let content = null;
    if (Array.isArray(n.content)) content = n.content.map(canonBaileys);
    else if (typeof n.content === 'string') content = 'b:' + Buffer.from(n.content).toString('hex');
    else if (n.content !== undefined) content = 'b:' + Buffer.from(n.content).toString('hex');
    return { tag: n.tag, attrs, content };
};
// Same tree, with JID-ness compared too (our decoder marks JIDs; Baileys' strings do not say).
const canonOursStrict = (n) => {
    const attrs = Object.entries(n.attrs)
        .map(([k, v]) => [k, typeof v === 'object' ? 'jid:' + wireJid(v.jid, false) : 's:' + v])
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let content = null;
    if (Array.isArray(n.content)) content = n.content.map(canonOursStrict);
    else if (n.content && n.content.bytes !== undefined) content = 'b:' + n.content.bytes;
    else if (n.content && n.content.text !== undefined) content = 'b:' + Buffer.from(n.content.text).toString('hex');
    else if (n.content && n.content.jid !== undefined) content = 'jid:' + wireJid(n.content.jid, false);
    return { tag: n.tag, attrs, content };
};
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// ---------------------------------------------------------------- run
const runTool = (mode, input) =>
    execFileSync(tool, [mode], { input, maxBuffer: 1 << 30 }).toString().split('\n').slice(0, -1);

const ourHex = runTool('encode', corpus.map((n) => JSON.stringify(n)).join('\n') + '\n');
if (ourHex.length !== corpus.length) throw new Error(`nodes_tool encode gave ${ourHex.length} lines for ${corpus.length}`);

const counts = {};
const fails = {};
const result = (check, ok, i, detail) => {
    counts[check] = counts[check] || { p: 0, f: 0 };
    if (ok) {
        counts[check].p++;
        return;
    }
    counts[check].f++;
    fails[check] = (fails[check] || 0) + 1;
    if (fails[check] <= 20) console.log(`FAIL ${check} node ${i}: ${detail}`);
};

const baileysHex = [];
const b2cIndex = [];
for (let i = 0; i < corpus.length; i++) {
    const n = corpus[i];
    const hex = ourHex[i];
    const baileysOk = jidsIn(n).every(canBaileysEncode);
    if (hex.startsWith('error')) {
        result('c2b', false, i, `our encoder: ${hex}`);
        continue;
    }
    // c2b: Baileys decodes our bytes
    try {
        const d = await decodeBinaryNode(Buffer.from(hex, 'hex'));
        const ok = same(canonBaileys(d), canonOurs(n, true));
        result('c2b', ok, i, ok ? '' : `${JSON.stringify(canonBaileys(d)).slice(0, 300)} vs ${JSON.stringify(canonOurs(n, true)).slice(0, 300)}`);
    } catch (e) {
        result('c2b', false, i, `Baileys threw ${e.message}`);
    }
    if (!baileysOk) continue;
    // same: Baileys' encoder gives our bytes
    let bhex;
    try {
        bhex = encodeBinaryNode(toBaileys(n)).toString('hex');
    } catch (e) {
        result('same', false, i, `Baileys encoder threw ${e.message}`);
        continue;
    }
    result('same', bhex === hex, i, `ours ${hex.slice(0, 120)} baileys ${bhex.slice(0, 120)}`);
    baileysHex.push(bhex);
    b2cIndex.push(i);
}

// b2c: our decoder reads Baileys' bytes; rt: our decoder reads our bytes.
const fromBaileys = runTool('decode', baileysHex.join('\n') + '\n');
fromBaileys.forEach((line, k) => {
    const i = b2cIndex[k];
    const d = JSON.parse(line);
    const ok = !d.error && same(canonOursStrict(d), canonOursStrict(corpus[i]));
    result('b2c', ok, i, d.error ? `our decoder: ${d.error}` : `${line.slice(0, 300)}`);
});
const okHex = ourHex.map((h, i) => [h, i]).filter(([h]) => !h.startsWith('error'));
const back = runTool('decode', okHex.map(([h]) => h).join('\n') + '\n');
back.forEach((line, k) => {
    const i = okHex[k][1];
    const d = JSON.parse(line);
    const ok = !d.error && same(canonOursStrict(d), canonOursStrict(corpus[i]));
    result('rt', ok, i, d.error ? `our decoder: ${d.error}` : `${line.slice(0, 300)}`);
});

let p = 0, f = 0;
for (const [check, c] of Object.entries(counts)) {
    console.log(`  ${check}: ${c.p} passed, ${c.f} failed`);
    p += c.p;
    f += c.f;
}
console.log(`corpus: ${corpus.length} nodes, ${Buffer.byteLength(ourHex.join(''), 'hex')} bytes`);
console.log(`binary: ${p} passed, ${f} failed`);
process.exit(f === 0 ? 0 : 1);
