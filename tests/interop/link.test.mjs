// link.test.mjs - a real Baileys client (pinned in package.json) links to `wagate sandbox` and
// reaches connection 'open': proof that the sandbox speaks the real protocol, not our dialect.
// Usage: node link.test.mjs   (WAGATE_BIN overrides ../../build/wagate; SANDBOX_LOG=1 shows the
// sandbox's log, BAILEYS_LOG=debug Baileys' own). Last line: "link: N passed, N failed".
//
// Setup as INTEROP.md says: WA_CERT_DETAILS.PUBLIC_KEY is set to the sandbox root key (so the
// certificate chain is really verified against it), Curve.verify is replaced by a strict check
// (Baileys' own returns true for any well-formed signature), and the 515 restart after pairing
// is handled here, as an application does: a new socket with the saved credentials.
//
// Scenarios:
//   qr         QR scanned through POST /phones/{n}/scan -> pair-success -> 515 -> login -> open;
//              the device is listed as connected; bad scans get 4xx with clear errors
//   restart    the sandbox is killed and started again on the same state file: the same
//              credentials log in again (persistence of root key, phone and device)
//   replaced   a second socket with the same credentials replaces the first one
//   logout     DELETE /phones/{n}/devices/{jid}: Baileys sees 401 (logged out)
//   code       requestPairingCode(n) -> POST /phones/{n}/link-code {code} -> open; a wrong code
//              is refused with 400; sock.logout() unlinks the device
//   drop       POST /control/drop closes the live socket; refuse makes a new one fail
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Curve } from 'baileys/lib/Utils/crypto.js';
import { check, sleep, withTimeout, installStrictVerify, Sandbox, connect, pairThenLogin, runSuite }
    from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-link-'));

// ---------------------------------------------------------------- strict signatures
const lenient = installStrictVerify();
{
    const kp = Curve.generateKeyPair();
    const msg = Buffer.from('strict verify self-test');
    const sig = Curve.sign(kp.private, msg);
    const bad = Buffer.from(sig);
    bad[5] ^= 1;
    check('strict Curve.verify accepts a real signature and rejects a tampered one',
        Curve.verify(kp.public, msg, sig) && !Curve.verify(kp.public, msg, bad) &&
        lenient(kp.public, msg, bad) === true);
}

const closeOf = (sock) => new Promise((resolve) => {
    sock.ev.on('connection.update', (u) => {
        if (u.connection === 'close')
            resolve(u.lastDisconnect?.error?.output?.statusCode);
    });
});

async function main() {
    // run.sh builds only the library; the sandbox is the wagate binary
    if (!process.env.WAGATE_BIN)
        execFileSync('make', ['-s', '--no-print-directory', 'build/wagate'], { cwd: path.join(here, '..', '..'), stdio: 'inherit' });
    const sb = await new Sandbox(path.join(tmp, 'sandbox.db'), tmp).start();
    check('root key written to --root-key-out',
        fs.readFileSync(sb.keyFile, 'utf8').trim() === sb.rootHex);
    const A = '15550001111';
    const B = '15550002222';
    let r = await sb.api('POST', '/phones', { number: A, pushName: 'Ann' });
    check('POST /phones -> 201', r.status === 201 && r.body.jid === `${A}@s.whatsapp.net`, JSON.stringify(r));
    await sb.api('POST', '/phones', { number: B, pushName: 'Bob' });

    // ---- qr
    const dirA = path.join(tmp, 'authA');
    let scan = null;
    const badScans = {};
    const { first, second } = await pairThenLogin(sb, dirA, async (qr) => {
        const prefix = qr.match(/^https:\/\/wa\.me\/settings\/linked_devices#/)?.[0] || '';
        const parts = qr.slice(prefix.length).split(',');
        // wrong identity key: refused, the companion stays unpaired
        const tampered = [...parts];
        tampered[2] = Buffer.alloc(32, 7).toString('base64');
        badScans.identity = await sb.api('POST', `/phones/${A}/scan`, { qr: prefix + tampered.join(',') });
        const other = [...parts];
        other[0] = '2@unknownref';
        badScans.ref = await sb.api('POST', `/phones/${A}/scan`, { qr: prefix + other.join(',') });
        // the legacy 4-part form names the same ref: accepted forms are both parsed
        badScans.legacyBad = await sb.api('POST', `/phones/${A}/scan`, { qr: tampered.slice(0, 4).join(',') });
        badScans.nophone = await sb.api('POST', '/phones/19990000000/scan', { qr });
        scan = await sb.api('POST', `/phones/${A}/scan`, { qr });
    });
    check('scan with a foreign identity key -> 422', badScans.identity?.status === 422, JSON.stringify(badScans.identity));
    check('legacy 4-part QR is parsed too (same identity check -> 422)', badScans.legacyBad?.status === 422,
        JSON.stringify(badScans.legacyBad));
    check('scan of an unknown ref -> 404', badScans.ref?.status === 404, JSON.stringify(badScans.ref));
    check('scan by an unknown phone -> 404', badScans.nophone?.status === 404, JSON.stringify(badScans.nophone));
    check('scan -> 200 {deviceJid}', scan?.status === 200 && new RegExp(`^${A}:\\d+@s\\.whatsapp\\.net$`).test(scan.body.deviceJid),
        JSON.stringify(scan));
    check('pairing socket ends with 515 (restart required)', first.close === 515, `got ${first.close}`);
    check('login socket reaches connection open', !!second?.open, `got close ${second?.close}`);
    check('Baileys creds.me.id is the device the sandbox linked', second?.creds?.me?.id === scan?.body?.deviceJid,
        `${second?.creds?.me?.id} vs ${scan?.body?.deviceJid}`);
    check('Baileys stored the LID from pair-success/success', /^\d+:\d+@lid$/.test(second?.creds?.me?.lid || ''),
        second?.creds?.me?.lid);
    r = await sb.api('GET', `/phones/${A}/devices`);
    check('GET devices lists it connected', r.status === 200 && r.body.length === 1 &&
        r.body[0].jid === scan?.body?.deviceJid && r.body[0].connected === true, JSON.stringify(r));
    // a keepalive query answered, an unknown query answered with an error (no hang)
    if (second?.open) {
        const sock = second.open;
        let ping;
        try {
            ping = await sock.query({ tag: 'iq', attrs: { to: '@s.whatsapp.net', type: 'get', xmlns: 'w:p' },
                content: [{ tag: 'ping', attrs: {} }] }, 5000);
        } catch (e) { ping = e; }
        check('w:p ping answered with a result', ping?.attrs?.type === 'result', String(ping));
        let unk;
        try {
            unk = await sock.query({ tag: 'iq', attrs: { to: '@s.whatsapp.net', type: 'get', xmlns: 'w:nothing' },
                content: [{ tag: 'nothing', attrs: {} }] }, 5000);
        } catch (e) { unk = e; }
        check('unknown iq answered with an error, not silence', unk instanceof Error && !/Timed Out/i.test(unk.message),
            String(unk));
        let count;
        try {
            count = await sock.query({ tag: 'iq', attrs: { to: '@s.whatsapp.net', type: 'get', xmlns: 'encrypt' },
                content: [{ tag: 'count', attrs: {} }] }, 5000);
        } catch (e) { count = e; }
        const v = +(count?.content?.[0]?.attrs?.value ?? -1);
        check('prekeys uploaded at login are counted (812)', v === 812, `count ${v}`);
    }

    // ---- restart: kill -9 and start again on the same state file
    if (second?.open) {
        const closed = closeOf(second.open);
        const st = await sb.stop('SIGKILL');
        check('sandbox killed', st?.sig === 'SIGKILL', JSON.stringify(st));
        await withTimeout(closed, 10000, 'socket close after kill');
        await sb.start();
        const again = await withTimeout(connect(sb, dirA), 40000, 'login after sandbox restart');
        check('after a sandbox restart the same creds log in again (open)', !!again.open, `close ${again.close}`);
        r = await sb.api('GET', `/phones/${A}/devices`);
        check('device still listed after restart', r.status === 200 && r.body.length === 1 && r.body[0].connected === true,
            JSON.stringify(r));

        // ---- replaced: a second connection with the same creds
        if (again.open) {
            const oldClosed = closeOf(again.open);
            const third = await withTimeout(connect(sb, dirA), 40000, 'second login');
            const code = await withTimeout(oldClosed, 10000, 'replaced close');
            check('a second login replaces the first (Baileys 440 connectionReplaced)', !!third.open && code === 440,
                `open ${!!third.open} code ${code}`);

            // ---- drop + refuse
            if (third.open) {
                const dropped = closeOf(third.open);
                r = await sb.api('POST', '/control/refuse', { seconds: 3 });
                check('POST /control/refuse -> 200', r.status === 200, JSON.stringify(r));
                r = await sb.api('POST', '/control/drop');
                check('POST /control/drop -> 200 {dropped >= 1}', r.status === 200 && r.body.dropped >= 1, JSON.stringify(r));
                const dc = await withTimeout(dropped, 10000, 'drop close');
                check('dropped socket closes', dc !== undefined, `code ${dc}`);
                const refused = await withTimeout(connect(sb, dirA), 20000, 'connect while refusing');
                check('a connection during refuse fails', !!refused.close && !refused.open, JSON.stringify({ close: refused.close }));
                await sleep(3200);
                const back = await withTimeout(connect(sb, dirA), 40000, 'connect after refuse');
                check('after the refuse window the device logs in again', !!back.open, `close ${back.close}`);

                // ---- logout from the phone
                if (back.open) {
                    const lo = closeOf(back.open);
                    r = await sb.api('DELETE', `/phones/${A}/devices/${encodeURIComponent(scan.body.deviceJid)}`);
                    check('DELETE device -> 200', r.status === 200 && r.body.loggedOut === true, JSON.stringify(r));
                    const code2 = await withTimeout(lo, 10000, 'logout close');
                    check('Baileys sees 401 logged out', code2 === 401, `code ${code2}`);
                    r = await sb.api('GET', `/phones/${A}/devices`);
                    check('no devices after logout', r.status === 200 && r.body.length === 0, JSON.stringify(r));
                    const after = await withTimeout(connect(sb, dirA), 20000, 'login after logout');
                    check('login after logout gets failure 401', after.close === 401, `close ${after.close}`);
                }
            }
        }
    }

    // ---- pairing code
    const dirB = path.join(tmp, 'authB');
    let linkRes = null;
    let wrongRes = null;
    const codeRun = await pairThenLogin(sb, dirB, async (_qr, sock) => {
        try {
            const code = await sock.requestPairingCode(B);
            // a wrong code first: refused, and the companion is left unpaired (socket ends)
            const wrong = code[0] === 'A' ? 'B' + code.slice(1) : 'A' + code.slice(1);
            wrongRes = await sb.api('POST', `/phones/${B}/link-code`, { code: wrong });
        } catch (e) {
            wrongRes = { error: String(e) };
        }
    });
    check('a wrong pairing code -> 400', wrongRes?.status === 400, JSON.stringify(wrongRes));
    check('the companion given a wrong code does not pair', !codeRun.second, JSON.stringify({ close: codeRun.first.close }));
    const dirC = path.join(tmp, 'authC');
    const codeRun2 = await pairThenLogin(sb, dirC, async (_qr, sock) => {
        try {
            const code = await sock.requestPairingCode(B);
            linkRes = await sb.api('POST', `/phones/${B}/link-code`, { code: `${code.slice(0, 4)}-${code.slice(4)}` });
        } catch (e) {
            linkRes = { error: String(e) };
        }
    });
    check('link-code -> 200 {deviceJid}', linkRes?.status === 200 && new RegExp(`^${B}:\\d+@s\\.whatsapp\\.net$`).test(linkRes.body.deviceJid),
        JSON.stringify(linkRes));
    check('pairing-code socket ends with 515', codeRun2.first.close === 515, `got ${codeRun2.first.close}`);
    check('pairing-code device reaches open', !!codeRun2.second?.open, `close ${codeRun2.second?.close}`);
    if (codeRun2.second?.open) {
        // the companion logs itself out (md remove-companion-device)
        r = await sb.api('GET', `/phones/${B}/devices`);
        const before = r.body?.length;
        await codeRun2.second.open.logout();
        await sleep(300);
        r = await sb.api('GET', `/phones/${B}/devices`);
        check('sock.logout() unlinks the device on the sandbox', before === 1 && r.status === 200 && r.body.length === 0,
            JSON.stringify({ before, after: r.body }));
    }

    const st = await sb.stop('SIGTERM');
    check('sandbox stops cleanly on SIGTERM', st?.code === 0, JSON.stringify(st));
}

await runSuite('link', tmp, main);
