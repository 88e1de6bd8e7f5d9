// End-to-end scenario of the Portcullis web portal in the system's headless Chromium. Started by
// crates/api/tests/web_portal.rs (browser_scenario), which runs a gateway, PostgreSQL and the API and
// passes:
//   PORTAL_URL        http://127.0.0.1:PORT
//   PORTAL_SECRETS    JSON {user: hex TOTP secret}; passwords are USER-pw
//   PORTAL_CLOCK      the clock offset file the gateway and API read (seconds); this script moves it
//   SCREENSHOT_DIR    where the main pages' screenshots go
// Any failed expectation throws: the process exits non-zero and the Rust test fails.

import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = need('PORTAL_URL');
const secrets = JSON.parse(need('PORTAL_SECRETS'));
const clockFile = need('PORTAL_CLOCK');
const shots = need('SCREENSHOT_DIR');
mkdirSync(shots, { recursive: true });

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this from crates/api/tests/web_portal.rs`);
  return v;
}

function check(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`);
}

// The gateway's clock is the system clock plus the offset file; a TOTP code is accepted once, so
// every code is taken one 30-second step later than the last.
function moveClock(seconds) {
  const now = parseInt(readFileSync(clockFile, 'utf8').trim() || '0', 10);
  writeFileSync(clockFile, String(now + seconds));
  return now + seconds;
}

function totp(user) {
  const offset = moveClock(30);
  const step = Math.floor((Date.now() / 1000 + offset) / 30);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', Buffer.from(secrets[user], 'hex')).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function signIn(browser, user, viewport) {
  const context = await browser.newContext({
    viewport,
    isMobile: viewport.width < 500,
    hasTouch: viewport.width < 500,
  });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`[${user} console] ${m.text()}`);
  });
  await page.goto(`${base}/web/login`);
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', `${user}-pw`);
  await page.fill('input[name=totp]', totp(user));
  await Promise.all([page.waitForURL(`${base}/web`), page.click('button[type=submit]')]);
  check((await page.textContent('h1')).includes(`Hello, ${user}`), `${user} is signed in`);
  return page;
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const desktop = { width: 1280, height: 860 };
  const phone = { width: 390, height: 844 };

  // The login page, on a phone.
  {
    const context = await browser.newContext({ viewport: phone, isMobile: true });
    const page = await context.newPage();
    await page.goto(`${base}/web/login`);
    await shot(page, '01-login-phone');
    await context.close();
  }

  // 1. alice asks for the hr-read bundle.
  const alice = await signIn(browser, 'alice', desktop);
  await alice.goto(`${base}/web/requests`);
  await alice.selectOption('select[name=target]', 'bundle:hr-read');
  await alice.selectOption('#access-form select[name=duration]', '2h');
  await alice.fill('#access-form input[name=reason]', 'Q3 headcount report');
  await Promise.all([alice.waitForURL(`${base}/web/requests`), alice.click('#access-form button[type=submit]')]);
  check((await alice.textContent('.flash')).includes('Request #1 sent'), 'request #1 was filed');
  check((await alice.textContent('#request-1')).includes('pending'), 'request #1 is pending');
  await shot(alice, '02-requests');

  // alice is no auditor: the audit log refuses her.
  const refused = await alice.goto(`${base}/web/audit`);
  check(refused.status() === 403, `alice gets 403 on /web/audit, got ${refused.status()}`);

  // 2. carol approves it on a phone.
  const carol = await signIn(browser, 'carol', phone);
  await carol.goto(`${base}/web/inbox`);
  const card = carol.locator('#request-1');
  check((await card.textContent()).includes('Q3 headcount report'), 'the inbox shows why');
  check((await card.textContent()).includes('1 of the approvers'), 'the inbox shows the N-of-M rule');
  await shot(carol, '03-inbox-phone');
  await card.locator('input[name=comment]').fill('ok for Q3');
  await card.locator('button', { hasText: 'Approve' }).click();
  await carol.locator('#request-1 .flash.ok').waitFor();
  check((await carol.textContent('#request-1')).includes('is approved now'), 'request #1 approved');
  const overflow = await carol.evaluate(() => document.documentElement.scrollWidth);
  check(overflow <= phone.width, `the inbox fits a 390 px screen (scrollWidth ${overflow})`);
  await shot(carol, '04-inbox-approved-phone');

  // 3. alice reads hr.people in the console. Her login's verification is made stale (the clock
  //    moves past its validity), so the gateway holds the statement for MFA.
  await alice.waitForTimeout(1500); // running gateways pick approvals up within a second
  moveClock(400);
  await alice.goto(`${base}/web/console`);
  await alice.fill('textarea[name=sql]', 'SELECT name, ssn FROM hr.people ORDER BY name');
  await alice.click('#console-form button[type=submit]');
  await alice.locator('#job .notice').first().waitFor({ timeout: 20000 });
  const notice = await alice.textContent('#job .notice');
  check(notice.includes('MFA'), `the console says the statement is held for MFA: ${notice}`);
  check(notice.includes('/web/mfa'), `the notice names the portal's MFA page: ${notice}`);
  await shot(alice, '05-console-held');

  // 4. She verifies on the MFA page; the held statement goes on and shows masked SSNs.
  const mfa = await alice.context().newPage();
  await mfa.goto(`${base}/web/mfa`);
  check((await mfa.textContent('main')).includes('holds your request'), 'the MFA page shows the hold');
  await shot(mfa, '06-mfa-held');
  await mfa.fill('input[name=code]', totp('alice'));
  await Promise.all([mfa.waitForURL(`${base}/web/mfa`), mfa.click('main button[type=submit]')]);
  check((await mfa.textContent('.flash')).includes('MFA verified'), 'MFA verified on the page');
  await mfa.close();
  await alice.locator('#job table.result').waitFor({ timeout: 20000 });
  const grid = await alice.textContent('#job table.result');
  check(grid.includes('Ann') && grid.includes('6789'), `rows came back: ${grid}`);
  check(!grid.includes('123-45-6789'), `SSNs are masked: ${grid}`);
  await shot(alice, '07-console-masked');

  // 5. A refused statement shows its reason.
  await alice.fill('textarea[name=sql]', 'SELECT * FROM public.secrets');
  await alice.click('#console-form button[type=submit]');
  await alice.locator('#error').waitFor({ timeout: 20000 });
  const error = await alice.textContent('#error');
  check(error.includes('the secrets table is closed'), `the refusal says why: ${error}`);
  check((await alice.textContent('#history')).includes('public.secrets'), 'the history lists it');
  await shot(alice, '08-console-refused');

  // 6. audrey, an auditor, finds alice's console session and replays it.
  const audrey = await signIn(browser, 'audrey', desktop);
  await audrey.goto(`${base}/web/audit?user=alice&kind=statements&since=1d`);
  await shot(audrey, '09-audit');
  const row = audrey.locator('#audit tr', { hasText: 'hr.people' }).first();
  await Promise.all([audrey.waitForURL(/\/web\/sessions\//), row.locator('a', { hasText: 'replay' }).click()]);
  const replayUrl = audrey.url();
  const replay = await audrey.textContent('main');
  check(replay.includes('console session'), 'the replay marks a console session');
  check(replay.includes('hr.people') && replay.includes('public.secrets'), 'the replay lists both statements');
  await Promise.all([audrey.waitForURL(/step=1/), audrey.click('a.button:has-text("Next")')]);
  check((await audrey.textContent('li.current')).length > 0, 'stepping shows the current step');
  await shot(audrey, '10-replay');
  await audrey.click('li.current a');
  await audrey.waitForURL(/\/web\/audit\/\d+/);
  await shot(audrey, '11-record');
  await audrey.goto(`${base}/web/policy`);
  await shot(audrey, '12-policy');

  // 7. The same session by its id alone, from the audit page's form.
  const sid = decodeURIComponent(new URL(replayUrl).pathname.split('/').pop());
  await audrey.goto(`${base}/web/audit`);
  check((await audrey.locator('svg#top-users-statements').count()) === 1, 'the audit page charts top users');
  await audrey.fill('#session-form input[name=id]', sid);
  await Promise.all([audrey.waitForURL(`${base}/web/sessions/${encodeURIComponent(sid)}`), audrey.click('#session-form button')]);
  check((await audrey.textContent('main')).includes('public.secrets'), 'the replay by id lists the statements');

  // 8. policy explain on a pasted statement, as `portcullis policy explain` shows it.
  await audrey.goto(`${base}/web/policy`);
  await Promise.all([audrey.waitForURL(`${base}/web/policy/explain`), audrey.click('a:has-text("Explain a statement")')]);
  await audrey.fill('#explain-form input[name=user]', 'alice');
  await audrey.fill('#explain-form input[name=resource]', 'app');
  await audrey.fill('#explain-form textarea[name=sql]', 'SELECT * FROM public.secrets; DELETE FROM public.orders');
  await Promise.all([audrey.waitForURL(`${base}/web/policy/explain`), audrey.click('#explain-form button[type=submit]')]);
  const report = await audrey.textContent('#report');
  check(report.includes('no-secrets (block)') && report.includes('the secrets table is closed'), `explain names the rule and its message: ${report}`);
  check(report.includes('deletes-need-approval') && report.includes('require-approval'), `explain shows the hold: ${report}`);
  await shot(audrey, '13-explain');

  // 9. The policy's versions, and what version 2 changed.
  await audrey.goto(`${base}/web/policy/versions`);
  check((await audrey.textContent('#versions')).includes('edited.yaml'), 'the versions list the edit');
  await shot(audrey, '14-policy-versions');
  await Promise.all([audrey.waitForURL(/\/web\/policy\/versions\/2$/), audrey.click('#version-2 a:has-text("diff")')]);
  const added = await audrey.locator('#diff .add').allTextContents();
  check(added.some((l) => l.includes('audit-orders')), `the diff shows the added rule: ${added}`);
  await shot(audrey, '15-policy-diff');
  console.log('browser scenario passed');
} finally {
  await browser.close();
}
