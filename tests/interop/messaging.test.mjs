// messaging.test.mjs - a real Baileys client (pinned in package.json) linked to `wagate sandbox`
// exchanges Signal-encrypted messages with the sandbox's simulated phones: proof that the
// sandbox routes and encrypts as WhatsApp's server and a primary phone do (usync, prekey
// bundles, <participants> routing, skmsg groups, DSM copies, offline queue, calls).
// Usage: node messaging.test.mjs   (WAGATE_BIN, SANDBOX_LOG=1, BAILEYS_LOG=debug as link.test).
// Last line: "messaging: N passed, N failed".
//
// Scenarios (Baileys is a companion of phone A):
//   in        phone B -> A: Baileys decrypts it (messages.upsert, the text, from B)
//   retry     Baileys' session with B is deleted: its retry receipt makes phone B resend;
//             then phone B's session with Baileys is deleted: B's retry makes Baileys resend
//   dsm       phone A -> B: B's phone has it; Baileys gets its own phone's copy (fromMe)
//   out       Baileys -> B: the sandbox routes it, phone B decrypts it (GET /phones/B/messages),
//             Baileys gets the server ack and phone B's delivery receipt
//   group     POST /groups {creator B, participants [A, C]}: B sends, Baileys decrypts the skmsg
//             (SKDM in a pkmsg first); Baileys sends to the group, B and C decrypt it
//   offline   Baileys closed; B sends; Baileys logs in again and gets it from the offline queue
//   call      B calls A: Baileys sees the offer and rejects it; B's calls list the reject
//   restart   the sandbox restarts on its state file: sessions survive both ways
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, sleep, withTimeout, waitFor, textOf, Sandbox, connect, pairThenLogin, runSuite }
    from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-msg-'));

// ---------------------------------------------------------------- Baileys driver
// Resolves with the first message Baileys emits that pred accepts (within ms).
const nextMessage = (sock, pred, ms, what) => withTimeout(new Promise((resolve) => {
    const h = ({ messages }) => {
        for (const m of messages) {
            if (pred(m)) {
                sock.ev.off('messages.upsert', h);
                resolve(m);
                return;
            }
        }
    };
    sock.ev.on('messages.upsert', h);
}), ms, what);
async function main() {
    if (!process.env.WAGATE_BIN)
        execFileSync('make', ['-s', '--no-print-directory', 'build/wagate'], { cwd: path.join(here, '..', '..'), stdio: 'inherit' });
    const sb = await new Sandbox(path.join(tmp, 'sandbox.db'), tmp).start();
    const A = '15550001111', B = '15550002222', C = '15550003333';
    const jA = `${A}@s.whatsapp.net`, jB = `${B}@s.whatsapp.net`;
    for (const [n, name] of [[A, 'Ann'], [B, 'Bob'], [C, 'Cid']])
        await sb.api('POST', '/phones', { number: n, pushName: name });

    const dirA = path.join(tmp, 'authA');
    const { second } = await pairThenLogin(sb, dirA, async (qr) => {
        await sb.api('POST', `/phones/${A}/scan`, { qr });
    });
    check('Baileys linked to phone A and open', !!second?.open);
    let sock = second.open;
    await sleep(1500); // prekey upload after login

    // ---- in: phone B -> A
    let got = nextMessage(sock, (m) => textOf(m) === 'hello from B', 15000, 'B -> A text');
    let r = await sb.api('POST', `/phones/${B}/messages`, { to: A, text: 'hello from B' });
    check('POST /phones/B/messages -> 200 {id}', r.status === 200 && /^3EB0[0-9A-F]{18}$/.test(r.body?.id || ''), JSON.stringify(r));
    let m = await got.catch((e) => e);
    check('Baileys decrypts the phone\'s text (messages.upsert)', textOf(m) === 'hello from B' &&
        m.key.remoteJid === jB && !m.key.fromMe && m.key.id === r.body.id, JSON.stringify(m?.key || String(m)));

    const rcB = await waitFor(async () => {
        const y = await sb.api('GET', `/phones/${B}/receipts`);
        // phone A (device 0) answers too; Baileys is device 1
        return y.body.find((z) => z.id === r.body.id && z.author === `${A}:1@s.whatsapp.net`) || null;
    }, 10000, 'receipt at phone B').catch((e) => e);
    check('phone B keeps Baileys\' delivery receipt (GET /phones/B/receipts)', rcB?.author === `${A}:1@s.whatsapp.net` &&
        /^(delivery|inactive)$/.test(rcB?.text || ''), JSON.stringify(rcB));

    // ---- retry: Baileys loses its session with phone B; B's next message fails to decrypt,
    // Baileys sends a retry receipt, phone B rebuilds the session and resends (§3.7)
    // Baileys 7 keeps sessions under the LID address once it knows the mapping (usync <lid/>)
    const lidB = (await sb.api('GET', '/phones')).body.find((x) => x.number === B).lid.split('@')[0];
    const lost = fs.readdirSync(dirA).filter((f) => f.startsWith(`session-${B}.`) ||
        f.startsWith(`session-${lidB}_1.`));
    for (const f of lost)
        fs.rmSync(path.join(dirA, f));
    got = nextMessage(sock, (m) => textOf(m) === 'after a lost session', 20000, 'resent message');
    r = await sb.api('POST', `/phones/${B}/messages`, { to: A, text: 'after a lost session' });
    m = await got.catch((e) => e);
    check('a retry receipt makes phone B resend what Baileys could not decrypt', lost.length > 0 &&
        textOf(m) === 'after a lost session' && m.key.id === r.body.id, `${lost} ${String(m?.message ? '' : m)}`);

    // ---- dsm: phone A -> B, Baileys (A's companion) sees its own phone's message
    got = nextMessage(sock, (m) => textOf(m) === 'from my phone', 15000, 'DSM copy');
    r = await sb.api('POST', `/phones/${A}/messages`, { to: B, text: 'from my phone' });
    m = await got.catch((e) => e);
    check('Baileys gets its own phone\'s sent message (deviceSentMessage, fromMe, chat B)',
        textOf(m) === 'from my phone' && m.key.fromMe === true && m.key.remoteJid === jB, JSON.stringify(m?.key || String(m)));
    let inbox = await sb.api('GET', `/phones/${B}/messages`);
    check('phone B received it', inbox.body.some((x) => x.text === 'from my phone' && x.from === jA));

    // ---- out: Baileys -> phone B
    let sent = null;
    const early = [];
    // Baileys may hold events back (history sync wait); while it does, a receipt's status is
    // folded into the buffered messages.upsert of the sent message instead of a messages.update
    const receipt = withTimeout(new Promise((resolve) => {
        const seen = (u) => {
            if (sent && u.key?.id === sent.key.id)
                resolve(u);
            else
                early.push(u);
        };
        sock.ev.on('messages.update', (ups) => {
            for (const u of ups)
                if (u.update?.status >= 3) // DELIVERY_ACK
                    seen(u);
        });
        sock.ev.on('messages.upsert', ({ messages }) => {
            for (const m of messages)
                if (m.key?.fromMe && m.status >= 3)
                    seen(m);
        });
    }), 30000, 'delivery receipt').catch((e) => e);
    sent = await sock.sendMessage(jB, { text: 'hi B, from Baileys' });
    inbox = await waitFor(async () => {
        const x = await sb.api('GET', `/phones/${B}/messages`);
        return x.body.find((y) => y.text === 'hi B, from Baileys') ? x : null;
    }, 15000, 'phone B inbox').catch((e) => e);
    const item = inbox?.body?.find?.((y) => y.text === 'hi B, from Baileys');
    check('phone B decrypts what Baileys sent (GET /phones/B/messages)', !!item && item.id === sent.key.id &&
        /^15550001111:\d+@s\.whatsapp\.net$/.test(item.author) && item.from === jA, JSON.stringify(inbox?.body || String(inbox)));
    const rc = early.find((u) => u.key?.id === sent.key.id) || await receipt;
    check('Baileys sees phone B\'s delivery receipt', rc?.key?.id === sent.key.id, JSON.stringify(rc?.key || String(rc)));

    // ---- phone retry: phone B loses its session with Baileys; Baileys' next message fails
    // there, B sends a retry receipt with its keys, Baileys resends in the single-device form
    execFileSync('sqlite3', [sb.state, `DELETE FROM phone_signal WHERE number = '${B}' AND kind = 1 AND k = '${A}.1'`]);
    const again = await sock.sendMessage(jB, { text: 'resent by Baileys' });
    const rs = await waitFor(async () => {
        const y = await sb.api('GET', `/phones/${B}/messages`);
        return y.body.find((z) => z.text === 'resent by Baileys') || null;
    }, 15000, 'resent by Baileys').catch((e) => e);
    check('phone B\'s retry receipt (with its keys) makes Baileys resend and B decrypts it',
        rs?.id === again.key.id, JSON.stringify(rs));

    // ---- group
    r = await sb.api('POST', '/groups', { subject: 'Sandbox group', creator: B, participants: [A, C] });
    check('POST /groups -> 201 {jid}', r.status === 201 && /^\d+@g\.us$/.test(r.body?.jid || ''), JSON.stringify(r));
    const G = r.body.jid;
    for (let i = 1; i <= 2; i++) {
        got = nextMessage(sock, (m) => textOf(m) === `group text ${i}`, 15000, 'group text');
        r = await sb.api('POST', `/phones/${B}/messages`, { to: G, text: `group text ${i}` });
        m = await got.catch((e) => e);
        check(`Baileys decrypts group message ${i} (skmsg) from B`, textOf(m) === `group text ${i}` &&
            m.key.remoteJid === G && m.key.participant === jB, JSON.stringify(m?.key || String(m)));
    }
    const meta = await sock.groupMetadata(G).catch((e) => e);
    check('group metadata through w:g2 (subject, 3 participants)', meta?.subject === 'Sandbox group' &&
        meta?.participants?.length === 3, String(meta?.message || JSON.stringify(meta)));
    const all = await sock.groupFetchAllParticipating().catch((e) => e);
    check('groups the account is in through w:g2 <participating>', all?.[G]?.subject === 'Sandbox group' &&
        all[G].participants.length === 3 && Object.keys(all).length === 1, String(all?.message || JSON.stringify(all)));
    await sock.sendMessage(G, { text: 'group reply from Baileys' });
    for (const n of [B, C]) {
        const x = await waitFor(async () => {
            const y = await sb.api('GET', `/phones/${n}/messages`);
            return y.body.find((z) => z.text === 'group reply from Baileys') || null;
        }, 15000, `phone ${n} group inbox`).catch((e) => e);
        check(`phone ${n} decrypts Baileys' group message (SKDM + skmsg)`, x?.from === G, JSON.stringify(x));
    }

    // ---- call: B rings A; Baileys rejects
    const callSeen = withTimeout(new Promise((resolve) => sock.ev.on('call', (calls) => {
        for (const c of calls)
            if (c.status === 'offer')
                resolve(c);
    })), 15000, 'call offer').catch((e) => e);
    r = await sb.api('POST', `/phones/${B}/calls`, { to: A });
    const call = await callSeen;
    check('Baileys sees the call offer', r.status === 200 && call?.id === r.body.callId && call?.from === jB,
        JSON.stringify(call?.message ? String(call) : call));
    if (call?.id) {
        await sock.rejectCall(call.id, call.from);
        const rej = await waitFor(async () => {
            const y = await sb.api('GET', `/phones/${B}/calls`);
            return y.body.find((z) => z.id === call.id && z.text === 'reject') || null;
        }, 10000, 'reject').catch((e) => e);
        check('phone B records the reject (GET /phones/B/calls)', rej?.text === 'reject', JSON.stringify(rej));
    }

    // ---- offline queue
    const closed = new Promise((resolve) => sock.ev.on('connection.update', (u) => { if (u.connection === 'close') resolve(); }));
    sock.end(undefined);
    await closed;
    await sleep(300);
    r = await sb.api('POST', `/phones/${B}/messages`, { to: A, text: 'while you were away' });
    let res = await withTimeout(connect(sb, dirA, {
        onSocket: (s) => { got = nextMessage(s, (m) => textOf(m) === 'while you were away', 35000, 'offline message'); },
    }), 30000, 'login again');
    sock = res.open;
    // Baileys holds events back after a login with offline messages until its (20 s) wait for
    // a history sync notification ends; the sandbox sends none, so this takes ~20 s.
    m = await got.catch((e) => e);
    check('a message sent while Baileys was offline arrives at its next login', textOf(m) === 'while you were away', String(m?.message ? '' : m));

    // ---- restart: sessions survive
    sock.end(undefined);
    await sb.stop('SIGTERM');
    await sb.start();
    res = await withTimeout(connect(sb, dirA, {
        onSocket: (s) => { got = nextMessage(s, (m) => textOf(m) === 'after restart', 15000, 'after restart'); },
    }), 30000, 'login after restart');
    sock = res.open;
    await sleep(500);
    r = await sb.api('POST', `/phones/${B}/messages`, { to: A, text: 'after restart' });
    m = await got.catch((e) => e);
    check('after a sandbox restart phone B still reaches Baileys', textOf(m) === 'after restart', String(m));
    await sock.sendMessage(jB, { text: 'still there?' });
    const x = await waitFor(async () => {
        const y = await sb.api('GET', `/phones/${B}/messages`);
        return y.body.find((z) => z.text === 'still there?') || null;
    }, 15000, 'after restart inbox').catch((e) => e);
    check('after a sandbox restart phone B still decrypts Baileys', x?.text === 'still there?', JSON.stringify(x));
    sock.end(undefined);
    const st = await sb.stop('SIGTERM');
    check('sandbox stops cleanly', st?.code === 0, JSON.stringify(st));
}

await runSuite('messaging', tmp, main);
